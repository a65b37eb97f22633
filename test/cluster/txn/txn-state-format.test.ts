import { expect, test } from "bun:test";
import fc from "fast-check";
import { LOCK_ONLY, type Lock, type TxnState } from "../../../src/cluster/txn/percolator.ts";
import { decodeTxnState, encodeTxnState } from "../../../src/cluster/txn/txn-state-format.ts";
import { FormatError } from "../../../src/io/format/bytes.ts";

const ts = fc.integer({ min: 1, max: 2 ** 50 });
const lock: fc.Arbitrary<Lock> = fc.oneof(
  fc.record({
    startTs: ts,
    primary: fc.string({ maxLength: 8 }),
    value: fc.oneof(fc.uint8Array({ maxLength: 16 }), fc.constant(null), fc.constant(LOCK_ONLY)),
    expiresAtMs: ts,
  }),
  // A put's lock carrying the TTL deadline of the version its commit writes.
  fc.record({
    startTs: ts,
    primary: fc.string({ maxLength: 8 }),
    value: fc.uint8Array({ maxLength: 16 }),
    expiresAtMs: ts,
    keyExpiresAtMs: ts,
  }),
);
const state: fc.Arbitrary<TxnState> = fc.record({
  locks: fc.uniqueArray(fc.tuple(fc.string({ maxLength: 12 }), lock), { selector: ([key]) => key, maxLength: 6 }),
  fates: fc.uniqueArray(fc.tuple(ts, fc.oneof(fc.constant(0), ts)), { selector: ([startTs]) => startTs, maxLength: 6 }),
});

test("property: a partition's transaction state reads back as written; damaged bytes are a FormatError or another state", () => {
  fc.assert(
    fc.property(state, fc.nat(), fc.integer({ min: 1, max: 255 }), (written, at, flip) => {
      const bytes = encodeTxnState(written);
      expect(decodeTxnState(bytes)).toEqual(written);
      const damaged = bytes.slice();
      damaged[at % damaged.length]! ^= flip;
      try {
        decodeTxnState(damaged);
      } catch (error) {
        expect(error).toBeInstanceOf(FormatError);
      }
    }),
  );
});

test("a state of another version, or with bytes left over, is refused by name", () => {
  const bytes = encodeTxnState({ locks: [], fates: [[5, 0]] });
  expect(() => decodeTxnState(Uint8Array.of(2, ...bytes.subarray(1)))).toThrow(
    "a partition's transaction state of version 2 (this node reads 1)",
  );
  expect(() => decodeTxnState(Uint8Array.of(...bytes, 0))).toThrow(
    "1 bytes left after a partition's transaction state",
  );
});

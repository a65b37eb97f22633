import { expect, test } from "bun:test";
import fc from "fast-check";
import { LOCK_ONLY, TxnPartition } from "../../../src/cluster/txn/percolator.ts";
import {
  applyTxnCommand,
  decodeTxnCommand,
  encodeTxnCommand,
  type TxnCommand,
} from "../../../src/cluster/txn/txn-command-format.ts";
import { FormatError } from "../../../src/io/format/bytes.ts";
import { MemoryVersions } from "./bank-model.ts";

const key = fc.string({ minLength: 1, maxLength: 12 });
const ts = fc.integer({ min: 1, max: 2 ** 50 });
const mutation = fc.oneof(
  fc.record({
    key,
    value: fc.oneof(fc.uint8Array({ maxLength: 16 }), fc.constant(null), fc.constant(LOCK_ONLY)),
  }),
  // A put with a TTL's deadline.
  fc.record({ key, value: fc.uint8Array({ maxLength: 16 }), expiresAtMs: ts }),
);
const mutations = fc.array(mutation, { maxLength: 5 });
const keys = fc.array(key, { maxLength: 5 });
const command: fc.Arbitrary<TxnCommand> = fc.oneof(
  fc.record(
    { type: fc.constant("onePhase" as const), startTs: ts, commitTs: ts, mutations },
    { requiredKeys: ["type", "commitTs", "mutations"] },
  ),
  fc.record({ type: fc.constant("prewrite" as const), startTs: ts, primary: key, expiresAtMs: ts, mutations }),
  fc.record(
    { type: fc.constant("commit" as const), startTs: ts, commitTs: ts, keys, primary: key },
    { requiredKeys: ["type", "startTs", "commitTs", "keys"] },
  ),
  // The commit that decides a write with a request id.
  fc.record({
    type: fc.constant("commit" as const),
    startTs: ts,
    commitTs: ts,
    keys,
    primary: key,
    request: fc.record(
      { id: key, deleted: fc.nat({ max: 1000 }), succeeded: fc.boolean() },
      { requiredKeys: ["id", "deleted"] },
    ),
  }),
  fc.record({ type: fc.constant("rollback" as const), startTs: ts, keys, decides: fc.boolean() }),
  fc.record({ type: fc.constant("compact" as const), revision: ts }),
  fc.record({
    type: fc.constant("expire" as const),
    commitTs: ts,
    keys: fc.array(fc.record({ key, revision: ts }), { maxLength: 5 }),
  }),
);

test("property: every transaction command reads back as written; damaged bytes are a FormatError or another command, never anything else", () => {
  fc.assert(
    fc.property(command, fc.nat(), fc.integer({ min: 1, max: 255 }), (written, at, flip) => {
      const bytes = encodeTxnCommand(written);
      expect(decodeTxnCommand(bytes)).toEqual(written);
      const damaged = bytes.slice();
      damaged[at % damaged.length]! ^= flip;
      try {
        decodeTxnCommand(damaged);
      } catch (error) {
        expect(error).toBeInstanceOf(FormatError);
      }
    }),
    { numRuns: 500 },
  );
});

test("named damage: another version, an unknown type or mutation kind, a count past the bytes, bytes left over", () => {
  const bytes = encodeTxnCommand({ type: "rollback", startTs: 5, keys: ["a"], decides: true });
  expect(() => decodeTxnCommand(Uint8Array.of(2, ...bytes.subarray(1)))).toThrow("a transaction command of version 2");
  expect(() => decodeTxnCommand(Uint8Array.of(1, 9))).toThrow("unknown transaction command type at byte 1");
  expect(() => decodeTxnCommand(Uint8Array.of(...bytes, 0))).toThrow("1 bytes left after a transaction command");
  expect(() => decodeTxnCommand(Uint8Array.of(1, 4, 5, 1, 0xff, 0xff, 0xff, 0x7f))).toThrow(
    /a count of 268435455 at byte 4/,
  );
  const put = encodeTxnCommand({ type: "onePhase", commitTs: 3, mutations: [{ key: "k", value: null }] });
  const badKind = put.slice();
  badKind[badKind.length - 1] = 7;
  expect(() => decodeTxnCommand(badKind)).toThrow(/unknown mutation kind 7/);
});

test("applied through its bytes, a command does what the partition's method does", () => {
  const direct = new TxnPartition(new MemoryVersions());
  const viaBytes = new TxnPartition(new MemoryVersions());
  const run = (c: TxnCommand) => {
    const outcome = applyTxnCommand(direct, c);
    expect(applyTxnCommand(viaBytes, decodeTxnCommand(encodeTxnCommand(c)))).toEqual(outcome);
    return outcome;
  };
  const v = new TextEncoder().encode("v");
  expect(
    run({ type: "prewrite", startTs: 10, primary: "a", expiresAtMs: 99, mutations: [{ key: "a", value: v }] }),
  ).toEqual({ ok: true });
  expect(run({ type: "onePhase", commitTs: 11, mutations: [{ key: "a", value: v }] })).toMatchObject({ ok: false });
  expect(run({ type: "commit", startTs: 10, commitTs: 12, keys: ["a"], primary: "a" })).toEqual({ ok: true });
  expect(run({ type: "rollback", startTs: 10, keys: ["a"], decides: true })).toMatchObject({ ok: false });
  expect(direct.read("a", 12)).toEqual(viaBytes.read("a", 12));
  expect(direct.status("a", 10)).toEqual({ state: "committed", commitTs: 12 });
});

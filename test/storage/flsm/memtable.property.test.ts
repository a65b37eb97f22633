import { expect, test } from "bun:test";
import fc from "fast-check";
import type { Entry } from "../../../src/storage/flsm/entry.ts";
import { keyBytes } from "../../../src/storage/flsm/key-bytes.ts";
import { ENTRY_OVERHEAD_BYTES, KEY_OVERHEAD_BYTES, Memtable } from "../../../src/storage/flsm/memtable.ts";
import type { Version } from "../../../src/storage/mvcc/version-chain.ts";

/**
 * The memtable against a model: per key, its versions oldest first in an array. Adds, compactions
 * (with or without an older run said to hold the key), evacuations; chains long enough to get a
 * ring (over 32 versions); keys past U+FFFF and next to it. Reads at every revision at or above the
 * highest floor, walks of any range both ways, and `bytes` / `entryCount` recounted from the model.
 */
const KEYS = ["", "a", "ab", "b", "é", "\uffee", "\uffff", "\u{1f600}", "\u{10ffff}"];

type Op =
  | { kind: "add"; key: number; value: number | null }
  | { kind: "compact"; key: number; back: number; held: boolean }
  | { kind: "evacuate" };

const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 10,
    arbitrary: fc.record({
      kind: fc.constant("add" as const),
      key: fc.nat({ max: KEYS.length - 1 }),
      value: fc.option(fc.nat({ max: 200 }), { freq: 4 }),
    }),
  },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant("compact" as const),
      key: fc.nat({ max: KEYS.length - 1 }),
      back: fc.oneof(fc.nat({ max: 4 }), fc.nat({ max: 150 })),
      held: fc.boolean(),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("evacuate" as const) }) },
);

const filled = (revision: number, length: number) => new Uint8Array(length).fill(revision & 0xff);

function bytesOf(model: Map<string, Version[]>): number {
  let sum = 0;
  for (const [key, versions] of model) {
    if (versions.length === 0) continue;
    sum += Buffer.byteLength(key) + KEY_OVERHEAD_BYTES;
    for (const v of versions) sum += (v.value?.byteLength ?? 0) + ENTRY_OVERHEAD_BYTES;
  }
  return sum;
}

const show = (e: Entry) => `${Buffer.from(e.key).toString("hex")}@${e.revision}:${e.value?.byteLength ?? "∅"}`;

/** Chains with a ring in the memtable's VersionChains (a private field: the test looks in). */
const ringsOf = (memtable: Memtable) =>
  (memtable as unknown as { chains: { rings: Map<number, unknown> } }).chains.rings.size;

test("the memtable reads, walks and counts as a model of arrays does, through adds, compactions and evacuations", () => {
  fc.assert(
    fc.property(
      fc.constantFrom(1, 300, 4_096, 1 << 20),
      fc.array(op, { maxLength: 400, size: "max" }),
      fc.nat({ max: KEYS.length }),
      fc.nat({ max: KEYS.length }),
      fc.integer({ min: 1, max: KEYS.length }),
      (size, ops, low, high, keyCount) => {
        const memtable = new Memtable(size);
        const model = new Map<string, Version[]>();
        let revision = 0;
        let floor = 0;
        for (const o of ops) {
          if (o.kind === "add") {
            const key = KEYS[o.key % keyCount]!;
            const versions = model.get(key) ?? [];
            const last = versions.at(-1);
            revision++;
            const version: Version =
              o.value === null
                ? { revision, value: null, createRevision: 0, version: 0 }
                : {
                    revision,
                    value: filled(revision, o.value),
                    createRevision: last?.value ? last.createRevision : revision,
                    version: last?.value ? last.version + 1 : 1,
                  };
            memtable.add(key, version);
            versions.push(version);
            model.set(key, versions);
          } else if (o.kind === "compact") {
            const key = KEYS[o.key % keyCount]!;
            const at = Math.max(floor, revision - o.back);
            floor = at;
            const versions = model.get(key) ?? [];
            let visible = -1;
            for (let i = 0; i < versions.length; i++) if (versions[i]!.revision <= at) visible = i;
            let drop = Math.max(0, visible);
            if (visible >= 0 && versions[visible]!.value === null && !o.held) drop = visible + 1;
            const dropped = memtable.compact(key, at, () => o.held);
            expect(dropped).toBe(drop);
            versions.splice(0, drop);
          } else while (memtable.evacuate());
          expect(memtable.bytes).toBe(bytesOf(model));
          expect(memtable.entryCount).toBe([...model.values()].reduce((sum, v) => sum + v.length, 0));
        }
        // Reads at every revision a reader may still use.
        for (const [key, versions] of model)
          for (let at = floor; at <= revision; at++) {
            const expected = versions.findLast((v) => v.revision <= at);
            const got = memtable.find(key, at);
            expect(got?.revision).toBe(expected?.revision);
            expect(got?.value).toEqual(expected?.value ?? (expected ? null : undefined));
            if (got && expected)
              expect([got.createRevision, got.version]).toEqual([expected.createRevision, expected.version]);
          }
        // Walks: [start, end) by UTF-8 bytes, versions newest first (reverse: the exact opposite).
        const start = low < KEYS.length ? keyBytes(KEYS[low]!) : undefined;
        const end = high < KEYS.length ? keyBytes(KEYS[high]!) : undefined;
        const expected: Entry[] = [];
        const sortedKeys = [...model.keys()].filter((k) => model.get(k)!.length > 0);
        sortedKeys.sort((x, y) => Buffer.compare(keyBytes(x), keyBytes(y)));
        for (const key of sortedKeys) {
          const bytes = keyBytes(key);
          if (start && Buffer.compare(bytes, start) < 0) continue;
          if (end && Buffer.compare(bytes, end) >= 0) continue;
          for (const v of [...model.get(key)!].reverse()) expected.push({ key: bytes, ...v });
        }
        const range = { start, end };
        expect([...memtable.entries(range)].map(show)).toEqual(expected.map(show));
        expect([...memtable.entries(range, true)].map(show)).toEqual(expected.map(show).reverse());
      },
    ),
    { numRuns: 300 },
  );
}, 200_000);

test("a chain long enough for a ring: compactions over it, a tombstone kept at the floor, reads at every revision", () => {
  const memtable = new Memtable(1 << 20);
  const key = KEYS[0]!;
  const model: Version[] = [];
  for (let revision = 1; revision <= 80; revision++) {
    const last = model.at(-1);
    const version: Version =
      revision === 60
        ? { revision, value: null, createRevision: 0, version: 0 }
        : {
            revision,
            value: filled(revision, 8),
            createRevision: last?.value ? last.createRevision : revision,
            version: last?.value ? last.version + 1 : 1,
          };
    memtable.add(key, version);
    model.push(version);
  }
  expect(memtable.find(key, 10)?.revision).toBe(10); // a read down the chain rings it
  expect(ringsOf(memtable)).toBe(1);
  // At floor 30 the 29 older versions go; at 60 the tombstone stays (an older run holds the key).
  expect(memtable.compact(key, 30, () => true)).toBe(29);
  expect(memtable.compact(key, 60, () => true)).toBe(30);
  model.splice(0, 59);
  expect(memtable.find(key, 60)).toMatchObject({ revision: 60, value: null });
  for (let at = 60; at <= 80; at++)
    expect(memtable.find(key, at)?.revision).toBe(model.findLast((v) => v.revision <= at)?.revision);
  expect(memtable.entryCount).toBe(21);
  expect(memtable.bytes).toBe(bytesOf(new Map([[key, model]])));
});

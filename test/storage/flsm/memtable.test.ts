import { expect, test } from "bun:test";
import { AssertionError } from "../../../src/errors.ts";
import type { Entry } from "../../../src/storage/flsm/entry.ts";
import { keyBytes } from "../../../src/storage/flsm/key-bytes.ts";
import { ENTRY_OVERHEAD_BYTES, KEY_OVERHEAD_BYTES, Memtable } from "../../../src/storage/flsm/memtable.ts";
import { bytes, text } from "../../helpers/bytes.ts";

const put = (revision: number, value: string) => ({
  revision,
  value: bytes(value),
  createRevision: revision,
  version: 1,
});
const tombstone = (revision: number) => ({ revision, value: null, createRevision: 0, version: 0 });
const shown = (entry: Entry | undefined) =>
  entry === undefined ? undefined : `${text(entry.key)}@${entry.revision}:${text(entry.value) ?? "∅"}`;
const a = "a";
const b = "b";

test("the worked example: entries in internal-key order, reads at a revision, compaction at a floor, freeze", () => {
  const memtable = new Memtable();
  memtable.add(a, put(3, "x"));
  memtable.add(b, put(4, "y"));
  memtable.add(a, tombstone(5));
  expect([...memtable.entries({})].map(shown)).toEqual(["a@5:∅", "a@3:x", "b@4:y"]);
  expect([...memtable.entries({}, true)].map(shown)).toEqual(["b@4:y", "a@3:x", "a@5:∅"]);
  expect(shown(memtable.get(keyBytes(a), 4))).toBe("a@3:x");
  expect(shown(memtable.get(keyBytes(a), 5))).toBe("a@5:∅");
  expect(memtable.get(keyBytes(a), 2)).toBeUndefined();
  expect(memtable).toMatchObject({ entryCount: 3, maxRevision: 5 });

  // An older run holds a version of a: the tombstone must stay to hide it.
  expect(memtable.compact(a, 5, () => true)).toBe(1);
  expect([...memtable.entries({})].map(shown)).toEqual(["a@5:∅", "b@4:y"]);
  expect(memtable.mayHoldGarbage(a)).toBe(true);
  // None does: the tombstone hides nothing, and goes.
  expect(memtable.compact(a, 5, () => false)).toBe(1);
  expect([...memtable.entries({})].map(shown)).toEqual(["b@4:y"]);
  expect(memtable.mayHoldGarbage(a)).toBe(false);

  memtable.freeze();
  expect(memtable.frozen).toBe(true);
  expect(() => memtable.add(b, put(6, "z"))).toThrow(AssertionError);
});

test("ranges are [start, end) by key bytes, forwards and backwards", () => {
  const memtable = new Memtable();
  const keys = ["a", "ab", "b", "é", "\u{1f600}"];
  for (const [i, key] of keys.entries()) memtable.add(key, put(i + 1, key));
  const range = { start: keyBytes("ab"), end: keyBytes("\u{1f600}") };
  expect([...memtable.entries(range)].map((e) => text(e.key))).toEqual(["ab", "b", "é"]);
  expect([...memtable.entries(range, true)].map((e) => text(e.key))).toEqual(["é", "b", "ab"]);
});

test("a read at an old revision finds it in a long history; revisions must increase", () => {
  const memtable = new Memtable();
  for (let revision = 1; revision <= 1_000; revision++) memtable.add(a, put(revision * 2, String(revision)));
  expect(shown(memtable.get(keyBytes(a), 701))).toBe("a@700:350");
  expect(shown(memtable.get(keyBytes(a), 2_000))).toBe("a@2000:1000");
  expect(() => memtable.add(a, put(2_000, "again"))).toThrow(AssertionError);
});

test("bytes count keys once and each version with its value; a compaction gives them back", () => {
  const memtable = new Memtable();
  memtable.add(a, put(1, "12345"));
  memtable.add(a, put(2, "1"));
  expect(memtable.bytes).toBe(1 + KEY_OVERHEAD_BYTES + 6 + 2 * ENTRY_OVERHEAD_BYTES);
  memtable.compact(a, 2, () => false);
  expect(memtable.bytes).toBe(1 + KEY_OVERHEAD_BYTES + 1 + ENTRY_OVERHEAD_BYTES);
});

test("a value added is copied: its buffer may be reused by its owner", () => {
  const memtable = new Memtable();
  const value = bytes("before");
  memtable.add(a, { revision: 1, value, createRevision: 1, version: 1 });
  value.fill(0);
  expect(text(memtable.get(keyBytes(a), 1)!.value)).toBe("before");
});

test("chunks and slabs are sized for the memtable: a tiny one (the tests' engines) allocates kilobytes, not megabytes", () => {
  const tiny = new Memtable(256);
  tiny.add(a, put(1, "x"));
  expect(tiny.allocatedBytes).toBeLessThan(16 * 1024);
  const full = new Memtable(64 * 2 ** 20);
  full.add(a, put(1, "x"));
  expect(full.allocatedBytes).toBeGreaterThan(1024 * 1024);
});

test("values that GC left in half-empty slabs are moved out, and every version still reads the same", () => {
  const memtable = new Memtable(4_096);
  const keys = Array.from({ length: 40 }, (_, i) => `key ${i}`);
  const value = (key: string, round: number) => `${key} round ${round} ${"v".repeat(40)}`;
  let revision = 0;
  // Every key written, then three of every four again: GC of the first versions of those leaves
  // the first round's slabs under half full.
  for (const [round, written] of [keys, keys.filter((_, i) => i % 4 !== 0)].entries())
    for (const key of written) {
      memtable.add(key, put(++revision, value(key, round)));
      memtable.compact(key, revision, () => false);
    }
  let more = 0;
  while (memtable.evacuate()) more++;
  expect(more).toBeGreaterThan(0);
  expect(memtable.entryCount).toBe(keys.length);
  for (const [i, key] of keys.entries())
    expect(text(memtable.find(key, revision)!.value)).toBe(value(key, i % 4 !== 0 ? 1 : 0));
  expect([...memtable.entries({})].map((entry) => text(entry.key))).toEqual([...keys].sort());
});

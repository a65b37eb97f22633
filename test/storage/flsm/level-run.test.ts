import { expect, test } from "bun:test";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import type { Entry } from "../../../src/storage/flsm/entry.ts";
import { LevelRun } from "../../../src/storage/flsm/level-run.ts";
import { BlockCache } from "../../../src/storage/flsm/table/block-cache.ts";
import { TableReader } from "../../../src/storage/flsm/table/reader.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { writeTable } from "./table/tables.ts";

const entry = (key: string, revision: number): Entry => ({
  key: bytes(key),
  revision,
  value: bytes(`${key}@${revision}`),
  createRevision: revision,
  version: 1,
});

/** The header's example: guards ∅ [#5], "g" [#7 #4], "p" [#3], each table its own file. */
async function exampleLevel() {
  const fs = new MemoryFileSystem();
  const cache = new BlockCache(1 << 20);
  const table = async (number: number, entries: Entry[]) => {
    await writeTable(fs, `/${number}.sst`, entries, { blockBytes: 64 });
    return TableReader.open(fs, `/${number}.sst`, cache);
  };
  const t5 = await table(5, [entry("a", 1), entry("c", 2), entry("f", 3)]);
  const t7 = await table(7, [entry("g", 30), entry("h", 31), entry("k", 32)]);
  const t4 = await table(4, [entry("h", 20), entry("i", 21), entry("o", 22)]);
  const t3 = await table(3, [entry("p", 10), entry("q", 11), entry("z", 12)]);
  return { run: new LevelRun([[t5], [t7, t4], [t3]]), readers: { t5, t7, t4, t3 } };
}

const shown = (entries: Iterable<Entry>) => [...entries].map((e) => `${text(e.key)}@${e.revision}`);

test("the guards are walked in key order, a guard's tables merged; reverse is exactly the opposite", async () => {
  const { run } = await exampleLevel();
  const forward = shown({ [Symbol.iterator]: () => run.entries({}) });
  expect(forward).toEqual([
    "a@1",
    "c@2",
    "f@3",
    "g@30",
    "h@31",
    "h@20",
    "i@21",
    "k@32",
    "o@22",
    "p@10",
    "q@11",
    "z@12",
  ]);
  expect(shown({ [Symbol.iterator]: () => run.entries({}, true) })).toEqual([...forward].reverse());
  expect(shown({ [Symbol.iterator]: () => run.entries({ start: bytes("h"), end: bytes("q") }) })).toEqual([
    "h@31",
    "h@20",
    "i@21",
    "k@32",
    "o@22",
    "p@10",
  ]);
  expect(run.maxRevision).toBe(32);
});

test("a walk that stops early reads no block of the guards it did not reach", async () => {
  const { run, readers } = await exampleLevel();
  const walk = run.entries({ start: bytes("h") });
  expect(shown([walk.next().value, walk.next().value])).toEqual(["h@31", "h@20"]);
  const read = (reader: TableReader) => reader.counters.blocksRead + reader.counters.blocksCached;
  expect(read(readers.t7)).toBeGreaterThan(0);
  expect(read(readers.t4)).toBeGreaterThan(0);
  expect(read(readers.t3)).toBe(0);
  expect(read(readers.t5)).toBe(0);
});

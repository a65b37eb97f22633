import { beforeEach, expect, test } from "bun:test";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import type { Entry } from "../../../../src/storage/flsm/entry.ts";
import { Block } from "../../../../src/storage/flsm/table/block.ts";
import { BlockBuilder } from "../../../../src/storage/flsm/table/block-builder.ts";
import { BlockCache } from "../../../../src/storage/flsm/table/block-cache.ts";
import { TableReader } from "../../../../src/storage/flsm/table/reader.ts";
import { bytes } from "../../../helpers/bytes.ts";
import { writeTable } from "./tables.ts";

/** A block of one entry with `valueBytes` of value. */
function blockOf(valueBytes: number): Block {
  const builder = new BlockBuilder(16);
  builder.add({ key: bytes("k"), revision: 1, value: new Uint8Array(valueBytes), createRevision: 1, version: 1 });
  return Block.decode(builder.finish(), "t/1.sst", 0);
}

test("the cache keeps the blocks used last within its bytes, counting hits and misses", () => {
  const blockBytes = blockOf(280).bytes.byteLength;
  const cache = new BlockCache(Math.floor(3.5 * blockBytes));
  const table = cache.newTable();
  for (let offset = 0; offset < 4; offset++) cache.put(table, offset, blockOf(280));
  expect(cache.size).toBe(3);
  expect(cache.bytes).toBe(3 * blockBytes);
  expect(cache.get(table, 0)).toBeUndefined(); // the oldest left
  expect(cache.get(table, 1)).toBeDefined(); // now the most recent
  cache.put(table, 4, blockOf(280));
  expect(cache.get(table, 2)).toBeUndefined(); // the least recent left, not 1
  expect(cache.get(table, 1)).toBeDefined();
  expect(cache.get(cache.newTable(), 1)).toBeUndefined(); // another table's block at the same offset
  expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 3 });
});

test("a block larger than the cache is not kept; a cache of 0 bytes keeps nothing", () => {
  const cache = new BlockCache(100);
  cache.put(1, 0, blockOf(200));
  expect(cache.size).toBe(0);
  const none = new BlockCache(0);
  none.put(1, 0, blockOf(0));
  expect(none.bytes).toBe(0);
});

let fs: MemoryFileSystem;
const entries: Entry[] = Array.from({ length: 1000 }, (_, i) => ({
  key: bytes(`key-${String(i).padStart(4, "0")}`),
  revision: 1,
  value: bytes("value"),
  createRevision: 1,
  version: 1,
}));

beforeEach(async () => {
  fs = new MemoryFileSystem();
  await fs.mkdirp("t");
  await writeTable(fs, "t/1.sst", entries, { blockBytes: 256 });
});

test("a get reads at most one data block; a second get of the block is a cache hit", async () => {
  const cache = new BlockCache(1 << 20);
  const reader = await TableReader.open(fs, "t/1.sst", cache);
  for (const { key } of entries) {
    const { blocksRead, blocksCached } = reader.counters;
    expect(reader.get(key, 1)?.key).toEqual(key);
    expect(reader.counters.blocksRead + reader.counters.blocksCached).toBe(blocksRead + blocksCached + 1);
  }
  // Each block was read from the file once, every later get of it came from the cache.
  expect(reader.counters.blocksRead).toBe(cache.size);
  expect(cache.hits).toBe(reader.counters.blocksCached);
  expect(cache.hits + cache.misses).toBe(entries.length);
});

test("readers share the cache; entries reads lazily, a block at a time, both ways", async () => {
  const cache = new BlockCache(1 << 20);
  const first = await TableReader.open(fs, "t/1.sst", cache);
  const second = await TableReader.open(fs, "t/1.sst", cache);
  const forward = first.entries({});
  expect(forward.next().value?.key).toEqual(bytes("key-0000"));
  expect(first.counters.blocksRead).toBe(1);
  const backward = second.entries({ end: bytes("key-0500") }, true);
  expect(backward.next().value?.key).toEqual(bytes("key-0499"));
  expect(second.counters.blocksRead).toBe(1);
  expect(cache.size).toBe(2);
  const blocks = cache.size;
  [...first.entries({})];
  expect(cache.size).toBeGreaterThan(20);
  expect(first.counters.blocksRead).toBe(cache.size - blocks + 1);
});

test("closing a reader drops its blocks from the shared cache, and only its own", async () => {
  await writeTable(fs, "t/2.sst", entries, { blockBytes: 256 });
  const cache = new BlockCache(1 << 20);
  const [gone, kept] = [await TableReader.open(fs, "t/1.sst", cache), await TableReader.open(fs, "t/2.sst", cache)];
  for (const reader of [gone, kept]) for (const entry of entries.slice(0, 300)) reader.get(entry.key, 1);
  const keptBytes = cache.bytes / 2;
  expect(cache.bytes).toBeGreaterThan(0);
  gone.close();
  expect(cache.bytes).toBe(keptBytes);
  const misses = cache.misses;
  kept.get(entries[0]!.key, 1);
  expect(cache.misses).toBe(misses); // the other table's blocks stayed
  kept.close();
  expect({ bytes: cache.bytes, size: cache.size }).toEqual({ bytes: 0, size: 0 });
});

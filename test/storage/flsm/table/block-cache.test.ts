import { beforeEach, expect, test } from "bun:test";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import type { Entry } from "../../../../src/storage/flsm/entry.ts";
import type { Block } from "../../../../src/storage/flsm/table/block.ts";
import { BlockBuilder } from "../../../../src/storage/flsm/table/block-builder.ts";
import { BlockCache } from "../../../../src/storage/flsm/table/block-cache.ts";
import { TableReader } from "../../../../src/storage/flsm/table/reader.ts";
import { bytes } from "../../../helpers/bytes.ts";
import { writeTable } from "./tables.ts";

/** A block's bytes: one entry per key given, each with `valueBytes` of value. */
function blockBytes(valueBytes: number, keys = ["k"]): Uint8Array {
  const builder = new BlockBuilder(16);
  for (const key of keys)
    builder.add({ key: bytes(key), revision: 1, value: new Uint8Array(valueBytes), createRevision: 1, version: 1 });
  return builder.finish();
}

/** Loads the block at `offset` of `table` through the cache, read from `encoded` on a miss. */
function load(cache: BlockCache, table: number, offset: number, encoded: Uint8Array): Block {
  return cache.load(table, offset, encoded.byteLength, (into) => into.set(encoded), "t/1.sst");
}

test("the ring keeps the blocks read last within its bytes, first in first out; a hit on one about to go moves it to the head", () => {
  const encoded = blockBytes(280);
  const cache = new BlockCache(Math.floor(8.5 * encoded.byteLength));
  const table = cache.newTable();
  for (let offset = 0; offset < 9; offset++) load(cache, table, offset, encoded);
  expect(cache.size).toBe(8);
  expect(cache.bytes).toBe(8 * encoded.byteLength);
  expect(cache.holds(table, 0)).toBe(false); // the oldest was overwritten
  // Block 1 is next to be overwritten: a hit gives it a second chance at the head.
  expect(load(cache, table, 1, encoded).get(bytes("k"), 1)?.value?.byteLength).toBe(280);
  load(cache, table, 9, encoded);
  expect(cache.holds(table, 1)).toBe(true);
  expect(cache.holds(table, 2)).toBe(false); // overwritten in its place
  // A hit on a recent block leaves it where it is.
  load(cache, table, 8, encoded);
  expect(cache.size).toBe(8);
  expect(cache.holds(cache.newTable(), 1)).toBe(false); // another table's block at the same offset
  expect({ hits: cache.hits, misses: cache.misses }).toEqual({ hits: 2, misses: 10 });
});

test("a block larger than a quarter of the cache is read but not kept; a cache of 0 bytes keeps nothing", () => {
  const encoded = blockBytes(200);
  const cache = new BlockCache(3 * encoded.byteLength);
  expect(load(cache, 1, 0, encoded).get(bytes("k"), 1)?.value?.byteLength).toBe(200);
  expect(cache.size).toBe(0);
  const none = new BlockCache(0);
  load(none, 1, 0, blockBytes(0));
  expect(none.bytes).toBe(0);
});

test("the ring is made of segments a block never spans; a cache past 4 GiB (one typed array's limit) works", () => {
  const encoded = blockBytes(280);
  const size = encoded.byteLength;
  // Segments of 2.5 blocks: each holds two, and the rest of it is skipped.
  const cache = new BlockCache(10 * size, Math.floor(2.5 * size));
  const table = cache.newTable();
  for (let offset = 0; offset < 8; offset++) load(cache, table, offset, encoded);
  expect(cache.size).toBe(8);
  for (let offset = 0; offset < 8; offset++)
    expect(load(cache, table, offset, encoded).get(bytes("k"), 1)?.value?.byteLength).toBe(280);
  const large = new BlockCache(5 * 2 ** 30);
  const rss = process.memoryUsage().rss;
  for (let offset = 0; offset < 3; offset++) load(large, 1, offset, encoded);
  expect(load(large, 1, 2, encoded).get(bytes("k"), 1)?.value?.byteLength).toBe(280);
  expect(large.hits).toBe(1);
  // Reserved, not resident: only the pages written count.
  expect(process.memoryUsage().rss - rss).toBeLessThan(64 * 2 ** 20);
});

test("a walk of a cached block's entries reads its own copy: the ring may overwrite the block meanwhile", () => {
  const keys = Array.from({ length: 40 }, (_, i) => `key-${String(i).padStart(2, "0")}`);
  const walked = blockBytes(10, keys);
  const other = blockBytes(10, ["zz"]);
  const cache = new BlockCache(8 * walked.byteLength);
  const walk = load(cache, 1, 0, walked).entries();
  expect(new TextDecoder().decode(walk.next().value?.key)).toBe("key-00");
  // Round the ring: the walked block's bytes are overwritten by others.
  for (let offset = 0; offset < (9 * walked.byteLength) / other.byteLength; offset++) load(cache, 2, offset, other);
  expect(cache.holds(1, 0)).toBe(false);
  expect([...walk].map((entry) => new TextDecoder().decode(entry.key))).toEqual(keys.slice(1));
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

test("bytes reserved beside the cache take its room: blocks past it go, segments wholly past it are let go, never under a quarter", () => {
  const encoded = blockBytes(280);
  const size = encoded.byteLength;
  // Segments of two blocks, eight of them.
  const cache = new BlockCache(16 * size, 2 * size);
  const table = cache.newTable();
  for (let offset = 0; offset < 16; offset++) load(cache, table, offset, encoded);
  expect([cache.size, cache.allocatedBytes, cache.roomBytes]).toEqual([16, 16 * size, 16 * size]);

  // A room of about six and a half blocks: the fourth segment half in it.
  const reserved = 9 * size + Math.floor(size / 2);
  cache.reserve(reserved);
  expect(cache.roomBytes).toBe(16 * size - reserved);
  expect(cache.size).toBe(6);
  expect(cache.bytes).toBe(6 * size);
  expect(cache.allocatedBytes).toBe(8 * size);
  expect([0, 5, 6, 15].map((offset) => cache.holds(table, offset))).toEqual([true, true, false, false]);
  // New blocks go round within the room, two laps of it: the oldest make way, nothing past it is written.
  for (let offset = 16; offset < 28; offset++) load(cache, table, offset, encoded);
  expect([cache.size, cache.bytes, cache.allocatedBytes]).toEqual([6, 6 * size, 8 * size]);
  expect([5, 21, 22, 27].map((offset) => cache.holds(table, offset))).toEqual([false, false, true, true]);
  for (const offset of [22, 23, 24, 25, 26, 27])
    expect(load(cache, table, offset, encoded).get(bytes("k"), 1)?.value?.byteLength).toBe(280);
  expect(cache.size).toBe(6);

  // More than three quarters reserved: a quarter stays.
  cache.reserve(100 * size);
  expect(cache.roomBytes).toBe(4 * size);
  expect(cache.size).toBeLessThanOrEqual(4);
  // Reserved bytes gone: the room grows back, and the segments with it as blocks reach them.
  cache.reserve(0);
  for (let offset = 20; offset < 40; offset++) load(cache, table, offset, encoded);
  expect([cache.size, cache.roomBytes, cache.allocatedBytes]).toEqual([16, 16 * size, 16 * size]);
});

test("a shrunk room keeps a hit's second chance within it, drops blocks too large for it, and frees the segments let go", async () => {
  const encoded = blockBytes(280);
  const size = encoded.byteLength;
  const cache = new BlockCache(16 * size, 2 * size);
  const table = cache.newTable();
  cache.reserve(12 * size);
  // A room of four: block 0 is next to go when the fifth is read; a hit on it first moves it to the head.
  for (let offset = 0; offset < 4; offset++) load(cache, table, offset, encoded);
  load(cache, table, 0, encoded);
  load(cache, table, 4, encoded);
  expect([0, 1, 4].map((offset) => cache.holds(table, offset))).toEqual([true, false, true]);

  // A block kept under a larger room goes when the room no longer takes a block its size.
  const large = blockBytes(3 * size);
  const roomy = new BlockCache(8 * large.byteLength);
  load(roomy, 1, 0, large);
  roomy.reserve(5 * large.byteLength);
  expect(roomy.size).toBe(0);

  // The segments past the room are let go for good: nothing the cache keeps refers to them.
  const freed = new BlockCache(16 * size, 2 * size);
  const lastSegment = (() => {
    for (let offset = 0; offset < 16; offset++) load(freed, table, offset, encoded);
    return new WeakRef(load(freed, table, 15, encoded).bytes.buffer);
  })();
  freed.reserve(10 * size);
  for (let round = 0; round < 5 && lastSegment.deref() !== undefined; round++) {
    await Bun.sleep(0);
    Bun.gc(true);
  }
  expect(lastSegment.deref()).toBeUndefined();
  expect(freed.size).toBe(6);
});

import { beforeEach, expect, test } from "bun:test";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import type { Entry } from "../../../../src/storage/flsm/entry.ts";
import { BlockCache } from "../../../../src/storage/flsm/table/block-cache.ts";
import { TableReader } from "../../../../src/storage/flsm/table/reader.ts";
import { TableWriter } from "../../../../src/storage/flsm/table/writer.ts";
import { bytes } from "../../../helpers/bytes.ts";
import { rejectionMessage } from "../../../helpers/rejection.ts";
import { writeTable } from "./tables.ts";

let fs: MemoryFileSystem;
beforeEach(async () => {
  fs = new MemoryFileSystem();
  await fs.mkdirp("t");
});

const put = (key: string, revision: number, value = "v", extra: Partial<Entry> = {}): Entry => ({
  key: bytes(key),
  revision,
  value: bytes(value),
  createRevision: revision,
  version: 1,
  ...extra,
});

test("the block of block-builder.ts's worked example, byte for byte, between the table's two magics", async () => {
  const entries = [
    put("apple", 9, "x"),
    { key: bytes("apple"), revision: 4, value: null, createRevision: 3, version: 0 },
    put("apply", 7, "hi", { expiresAtMs: 1000 }),
  ];
  await writeTable(fs, "t/1.sst", entries);
  const file = fs.bytes("t/1.sst");
  const block = [
    ...[0, 5, 0, 9, 9, 1, 1, ...bytes("apple"), ...bytes("x")], // (0,5,"apple"), value "x"
    ...[5, 0, 1, 4, 3, 0], // (5,0,""), a tombstone
    ...[4, 1, 2, 7, 7, 1, 0xe8, 0x07, 2, ...bytes("y"), ...bytes("hi")], // (4,1,"y"), deadline 1000
    ...[0, 0, 0, 0, 1, 0, 0, 0], // restart points [0], and their count
  ];
  expect(new TextDecoder().decode(file.subarray(0, 8))).toBe("HKVTABLE");
  expect([...file.subarray(8, 8 + block.length)]).toEqual(block);
  const crc = new DataView(file.buffer, file.byteOffset + 8 + block.length, 4).getUint32(0, true);
  expect(crc).toBe(Bun.hash.crc32(new Uint8Array(block)));
  expect(new TextDecoder().decode(file.subarray(file.byteLength - 8))).toBe("HKVTABLE");
});

test("finish returns the properties and the file's size", async () => {
  const entries = [
    put("a", 5),
    { key: bytes("a"), revision: 3, value: null, createRevision: 2, version: 0 },
    put("b", 9),
    put("é", 2),
  ];
  const { properties, fileBytes } = await writeTable(fs, "t/1.sst", entries, { blockBytes: 20 });
  expect(fileBytes).toBe(fs.bytes("t/1.sst").byteLength);
  expect(properties).toEqual({
    entryCount: 4,
    keyCount: 3,
    tombstoneCount: 1,
    dataBytes: properties.dataBytes,
    minRevision: 2,
    maxRevision: 9,
    smallestKey: bytes("a"),
    largestKey: bytes("é"),
  });
  expect(properties.dataBytes).toBeGreaterThan(0);
  expect(properties.dataBytes).toBeLessThan(fileBytes);
});

test("entries out of internal-key order are refused with the two entries named", async () => {
  const cases: [Entry, Entry][] = [
    [put("a", 3), put("a", 5)], // one key's versions must come newest first
    [put("a", 5), put("a", 5)], // the same (key, revision) twice
    [put("b", 1), put("a", 9)], // keys ascending
  ];
  for (const [first, second] of cases) {
    const writer = await TableWriter.create(fs, "t/1.sst");
    await writer.add(first);
    expect(await rejectionMessage(writer.add(second))).toMatch(
      /must come in internal-key order, but \("a", revision \d\) follows/,
    );
    await writer.abort();
    expect(await fs.list("t")).toEqual([]);
  }
});

test("streams: blocks reach the file as they fill, before finish", async () => {
  const writer = await TableWriter.create(fs, "t/1.sst", { blockBytes: 256, compression: "none" });
  const sizes: number[] = [];
  for (let i = 0; i < 300; i++) {
    await writer.add(put(`key-${String(i).padStart(4, "0")}`, 1, "x".repeat(40)));
    sizes.push(fs.bytes("t/1.sst").byteLength);
  }
  // The file grows a block at a time: what is not in it yet is less than a block (each entry holds 40 value bytes).
  expect(new Set(sizes).size).toBeGreaterThan(40);
  for (const [i, size] of sizes.entries()) expect(size).toBeGreaterThan((i + 1) * 40 - 256);
  const { fileBytes } = await writer.finish();
  expect(fileBytes).toBeGreaterThan(sizes[299] as number);
});

test("a table is never empty, never written over an existing file, and takes nothing after finish", async () => {
  const empty = await TableWriter.create(fs, "t/1.sst");
  expect(await rejectionMessage(empty.finish())).toMatch(/finish needs an open table with entries/);
  await empty.abort();
  await writeTable(fs, "t/2.sst", [put("a", 1)]);
  expect(await rejectionMessage(TableWriter.create(fs, "t/2.sst"))).toMatch(/already exists/);
  const done = await TableWriter.create(fs, "t/3.sst");
  await done.add(put("a", 1));
  await done.finish();
  expect(await rejectionMessage(done.add(put("b", 1)))).toMatch(/already finished/);
});

test("an open table holds in memory its block index (its last keys, four numbers a block) and its Bloom filter", async () => {
  const entries = Array.from({ length: 1000 }, (_, i) => put(`key${String(i).padStart(4, "0")}`, i + 1, "value"));
  const memoryOf = async (path: string, blockBytes: number) => {
    const { properties } = await writeTable(fs, path, entries, { blockBytes, bloomBitsPerKey: 10 });
    const reader = await TableReader.open(fs, path, new BlockCache(0));
    const bytes = reader.memoryBytes;
    reader.close();
    return { bytes, dataBytes: properties.dataBytes };
  };
  const oneBlock = await memoryOf("t/1.sst", 1 << 20);
  const filterBytes = (1000 * 10) / 8;
  // One key and four 32-bit numbers beside the filter.
  expect(oneBlock.bytes).toBe(filterBytes + "key0999".length + 4 * 4);
  // Blocks of at most 64 bytes and an entry (under 30 here): each adds its key and its numbers.
  const small = await memoryOf("t/2.sst", 64);
  const blocks = small.dataBytes / (64 + 30);
  expect(small.bytes - oneBlock.bytes).toBeGreaterThan(blocks * (4 * 4 + "key0000".length));
});

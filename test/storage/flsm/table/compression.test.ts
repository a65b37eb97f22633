import { expect, test } from "bun:test";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import type { Entry } from "../../../../src/storage/flsm/entry.ts";
import { BlockCache } from "../../../../src/storage/flsm/table/block-cache.ts";
import { TableReader } from "../../../../src/storage/flsm/table/reader.ts";
import { bytes, text } from "../../../helpers/bytes.ts";
import { framed, indexOf, rebuilt, sections } from "./forged.ts";
import { writeTable } from "./tables.ts";

const put = (key: string, revision: number, value: Uint8Array): Entry => ({
  key: bytes(key),
  revision,
  value,
  createRevision: revision,
  version: 1,
});

/** Bytes from a fixed linear congruential sequence: random to zstd, the same in every run. */
function noise(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let state = seed;
  for (let i = 0; i < length; i++) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    out[i] = state >>> 24;
  }
  return out;
}

async function tableOf(
  entries: Entry[],
  compression: "zstd" | "none",
): Promise<{ bytes: number; reader: TableReader }> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp("t");
  const { fileBytes } = await writeTable(fs, "t/1.sst", entries, { blockBytes: 4096, compression });
  return { bytes: fileBytes, reader: await TableReader.open(fs, "t/1.sst", new BlockCache(1 << 20)) };
}

test("blocks that compress are stored compressed and read back the same; blocks that do not are stored as built", async () => {
  const keys = Array.from({ length: 400 }, (_, i) => `key-${String(i).padStart(5, "0")}`);
  const repetitive = keys.map((key, i) => put(key, i + 1, bytes(`value ${i} `.repeat(12))));
  const random = keys.map((key, i) => put(key, i + 1, noise(100, i + 1)));
  for (const entries of [repetitive, random]) {
    const zstd = await tableOf(entries, "zstd");
    const none = await tableOf(entries, "none");
    expect([...zstd.reader.entries({})]).toEqual([...none.reader.entries({})]);
    expect([...zstd.reader.entries({}, true)]).toEqual([...none.reader.entries({}, true)]);
    for (const entry of entries.slice(0, 50)) expect(zstd.reader.get(entry.key, entry.revision)).toEqual(entry);
    if (entries === repetitive) expect(zstd.bytes).toBeLessThan(none.bytes / 4);
    // Random values: no block saves an eighth, so each is stored as built and the files are the same size.
    else expect(zstd.bytes).toBe(none.bytes);
  }
});

test("a table of format version 1 (no compression, no raw sizes in its index) is still read", async () => {
  // Written by the version 1 writer: keys key-00 … key-39, each a newer version at revision 100 + i
  // (a tombstone every fifth key, a deadline every seventh) over an older one at revision i + 1.
  const fixture = new Uint8Array(
    await Bun.file(new URL("../../../fixtures/flsm-table-v1.sst", import.meta.url)).arrayBuffer(),
  );
  const fs = new MemoryFileSystem();
  await fs.mkdirp("t");
  fs.overwrite("t/1.sst", fixture);
  const reader = await TableReader.open(fs, "t/1.sst", new BlockCache(1 << 20));
  const all = [...reader.entries({})];
  expect(all.length).toBe(80);
  expect(text(all[0]!.key)).toBe("key-00");
  expect(all[0]!.value).toBeNull();
  expect(all[0]!.expiresAtMs).toBe(1_800_000_000_000);
  expect(text(reader.get(bytes("key-13"), 200)!.value!)).toBe("value 13 new".repeat(3));
  expect(text(reader.get(bytes("key-13"), 50)!.value!)).toBe("value 13 old");
  expect(reader.get(bytes("key-13"), 13)).toBeUndefined();
  expect(reader.expiring().length).toBe(6);
});

test("a compressed block larger than the reader's buffer (a large value) reads back the same", async () => {
  const half = noise(100 * 1024, 7);
  const value = new Uint8Array(2 * half.byteLength);
  value.set(half);
  value.set(half, half.byteLength);
  const entries = [put("a", 1, bytes("small")), put("b", 2, value), put("c", 3, bytes("after"))];
  const zstd = await tableOf(entries, "zstd");
  const none = await tableOf(entries, "none");
  // Stored compressed (the repeat halves it), and still past 64 KiB.
  expect(zstd.bytes).toBeGreaterThan(100 * 1024);
  expect(zstd.bytes).toBeLessThan(none.bytes * 0.6);
  expect(zstd.reader.get(bytes("b"), 2)?.value).toEqual(value);
  expect([...zstd.reader.entries({})]).toEqual(entries);
});

test("a compressed block made by hand as the format document says reads back, and is the writer's, byte for byte", async () => {
  // One block of values that compress: built by the writer as built, then compressed here.
  const entries = Array.from({ length: 30 }, (_, i) =>
    put(`key-${String(i).padStart(2, "0")}`, i + 1, bytes(`value ${i} `.repeat(6))),
  );
  const fs = new MemoryFileSystem();
  await fs.mkdirp("t");
  await writeTable(fs, "t/none.sst", entries, { compression: "none" });
  await writeTable(fs, "t/zstd.sst", entries, { compression: "zstd" });
  const asBuilt = fs.bytes("t/none.sst");
  const [block] = indexOf(asBuilt);
  expect(indexOf(asBuilt).length).toBe(1);
  // A zstd frame (level 1) of the whole block, its CRC included; the CRC of the frame; its raw size in the index.
  const whole = asBuilt.subarray(block!.offset, block!.offset + block!.size);
  const stored = framed(Bun.zstdCompressSync(whole, { level: 1 }));
  fs.overwrite(
    "t/hand.sst",
    rebuilt(asBuilt, () => ({ bytes: stored, rawSize: whole.byteLength })),
  );
  const reader = await TableReader.open(fs, "t/hand.sst", new BlockCache(1 << 20));
  expect([...reader.entries({})]).toEqual(entries);
  // The data and the index, up to the Bloom filter: the writer's own (its properties count other data bytes).
  const written = fs.bytes("t/zstd.sst");
  const hand = fs.bytes("t/hand.sst");
  expect(Buffer.compare(hand.subarray(0, sections(hand).bloom), written.subarray(0, sections(written).bloom))).toBe(0);
});

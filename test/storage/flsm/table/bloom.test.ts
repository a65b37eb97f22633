import { expect, test } from "bun:test";
import fc from "fast-check";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import { BlockCache } from "../../../../src/storage/flsm/table/block-cache.ts";
import { BloomBuilder, BloomFilter, bloomProbes } from "../../../../src/storage/flsm/table/bloom.ts";
import { TableReader } from "../../../../src/storage/flsm/table/reader.ts";
import { bytes } from "../../../helpers/bytes.ts";
import { keyArbitrary, writeTable } from "./tables.ts";

/** The filter of `keys`, through its section's bytes (CRC cut off) as a reader gets them. */
function filterOf(keys: readonly Uint8Array[], bitsPerKey: number): BloomFilter {
  const builder = new BloomBuilder(bitsPerKey);
  for (const key of keys) builder.add(key);
  const section = builder.finish();
  return new BloomFilter(section.subarray(0, section.byteLength - 4));
}

test("a Bloom filter has no false negatives", () => {
  fc.assert(
    fc.property(
      fc.uniqueArray(keyArbitrary, { maxLength: 300, comparator: (a, b) => Buffer.compare(a, b) === 0 }),
      fc.integer({ min: 1, max: 20 }),
      (keys, bitsPerKey) => {
        const filter = filterOf(keys, bitsPerKey);
        for (const key of keys) expect(filter.mayContain(key)).toBe(true);
      },
    ),
    { numRuns: 300 },
  );
});

test("the false-positive rate is near (1 - e^(-kn/m))^k at 10 and at 5 bits per key", () => {
  const keys = Array.from({ length: 20_000 }, (_, i) => bytes(`member-${i}`));
  for (const bitsPerKey of [10, 5]) {
    const filter = filterOf(keys, bitsPerKey);
    const probes = 200_000;
    let positives = 0;
    for (let i = 0; i < probes; i++) if (filter.mayContain(bytes(`stranger-${i}`))) positives++;
    const k = bloomProbes(bitsPerKey);
    const expected = (1 - Math.exp(-k / bitsPerKey)) ** k; // 0.82% at 10 bits (k = 7), 9.2% at 5 (k = 3)
    const measured = positives / probes;
    expect(measured).toBeGreaterThan(expected * 0.7);
    expect(measured).toBeLessThan(expected * 1.3);
  }
});

test("a table's get of a missing key is answered by the filter alone, reading no data block", async () => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp("t");
  const entries = Array.from({ length: 2000 }, (_, i) => ({
    key: bytes(`key-${String(i).padStart(5, "0")}`),
    revision: i + 1,
    value: bytes("v"),
    createRevision: i + 1,
    version: 1,
  }));
  await writeTable(fs, "t/1.sst", entries, { blockBytes: 512 });
  const reader = await TableReader.open(fs, "t/1.sst", new BlockCache(0));
  const probes = 10_000;
  for (let i = 0; i < probes; i++) expect(reader.get(bytes(`absent-${i}`), 5000)).toBeUndefined();
  const { bloomNegatives, blocksRead } = reader.counters;
  // Every get the filter lets through (a false positive) reads one block and finds nothing.
  expect(bloomNegatives + blocksRead).toBe(probes);
  expect(blocksRead / probes).toBeLessThan(0.02);
});

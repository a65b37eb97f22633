import { afterAll, expect, test } from "bun:test";
import fc from "fast-check";
import type { FileSystem } from "../../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import { realFileSystem } from "../../../../src/io/fs/real-fs.ts";
import type { Entry } from "../../../../src/storage/flsm/entry.ts";
import { BlockCache } from "../../../../src/storage/flsm/table/block-cache.ts";
import { TableReader } from "../../../../src/storage/flsm/table/reader.ts";
import type { TableExpiry } from "../../../../src/storage/flsm/table/ttl-section.ts";
import { scratchDir } from "../../../helpers/processes.ts";
import { keyArbitrary, modelGet, modelRange, sortedEntriesArbitrary, tinyTableOptions, writeTable } from "./tables.ts";

const probes = fc.array(fc.record({ key: keyArbitrary, revision: fc.integer({ min: 0, max: 61 }) }), {
  maxLength: 40,
});
const ranges = fc.array(
  fc.record({ start: fc.option(keyArbitrary, { nil: undefined }), end: fc.option(keyArbitrary, { nil: undefined }) }),
  { maxLength: 6 },
);

/**
 * A table written from sorted entries answers like the sorted array: `get` at any revision (the
 * probes also use the table's own keys, so most are hits), `entries` over any range both ways.
 * The cache is tiny, so blocks are read from the file again and again.
 */
async function checkAgainstModel(fs: FileSystem, dir: string, runs: number): Promise<void> {
  let tables = 0;
  await fc.assert(
    fc.asyncProperty(
      sortedEntriesArbitrary,
      tinyTableOptions,
      probes,
      ranges,
      async (entries, options, extra, scans) => {
        const path = `${dir}/${++tables}.sst`;
        const finished = await writeTable(fs, path, entries, options);
        const reader = await TableReader.open(fs, path, new BlockCache(2048));
        try {
          expect(reader.properties).toEqual(finished.properties);
          expect(reader.properties.entryCount).toBe(entries.length);
          expect([...reader.entries({})]).toEqual(entries);
          expect([...reader.entries({}, true)]).toEqual([...entries].reverse());
          const own = entries.map((e: Entry) => ({ key: e.key, revision: e.revision + (e.revision % 3) - 1 }));
          for (const { key, revision } of [...own, ...extra])
            expect(reader.get(key, revision)).toEqual(modelGet(entries, key, revision));
          for (const range of scans)
            for (const reverse of [false, true])
              expect([...reader.entries(range, reverse)]).toEqual(modelRange(entries, range, reverse));
          const deadlines = entries.flatMap(({ key, revision, expiresAtMs }): TableExpiry[] =>
            expiresAtMs === undefined ? [] : [{ key, revision, expiresAtMs }],
          );
          expect(reader.expiring()).toEqual(deadlines);
        } finally {
          reader.close();
          await fs.remove(path);
        }
      },
    ),
    { numRuns: runs },
  );
}

test("a table answers get and entries like a sorted array (in-memory file system)", async () => {
  const fs = new MemoryFileSystem();
  await fs.mkdirp("t");
  await checkAgainstModel(fs, "t", 300);
});

const scratch = scratchDir("homekv-table-");
afterAll(() => scratch.cleanup());

test("a table answers get and entries like a sorted array (real files)", async () => {
  await checkAgainstModel(realFileSystem, scratch.path, 60);
});

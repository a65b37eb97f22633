import { expect, test } from "bun:test";
import fc from "fast-check";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import { runCompactionJob } from "../../../../src/storage/flsm/compaction/run-compaction-job.ts";
import { tablePath } from "../../../../src/storage/flsm/compaction/table-file-sink.ts";
import { compareKeyBytes, type Entry } from "../../../../src/storage/flsm/entry.ts";
import { compactionJob } from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import { LevelSet } from "../../../../src/storage/flsm/levels/level-set.ts";
import type { TableMeta } from "../../../../src/storage/flsm/levels/table-meta.ts";
import { ManifestState } from "../../../../src/storage/flsm/manifest/manifest-state.ts";
import { sortedEntriesArbitrary } from "../table/tables.ts";
import { DENSE_GUARDS, modelCompaction, readTable, writeInputs } from "./inputs.ts";

const DIR = "db/flsm";
const FIRST_OUTPUT = 100;

/**
 * Random entries (any key bytes, many versions, tombstones, TTLs, large values) dealt into up to 4
 * level-0 tables; sometimes a level-2 table over part of their keys, which keeps guards out of its
 * range and the job off the bottom; a random GC floor and tiny output tables.
 */
const scenario = sortedEntriesArbitrary
  // Store keys are never empty (an empty key would be a guard before the sentinel's keys).
  .map((entries) => entries.filter((e) => e.key.byteLength > 0))
  .filter((entries) => entries.length > 0)
  .chain((entries) =>
    fc.record({
      entries: fc.constant(entries),
      /** The input table of each entry. */
      deal: fc.array(fc.integer({ min: 0, max: 3 }), { minLength: entries.length, maxLength: entries.length }),
      floor: fc.integer({ min: 0, max: 61 }),
      maxTableBytes: fc.integer({ min: 1, max: 400 }),
      blockBytes: fc.integer({ min: 1, max: 300 }),
      below: fc.option(fc.tuple(fc.nat(), fc.nat()), { freq: 2 }),
    }),
  );

test("a job over real tables writes exactly the tables, entries and change runCompaction's model gives", async () => {
  await fc.assert(
    fc.asyncProperty(scenario, async ({ entries, deal, floor, maxTableBytes, blockBytes, below }) => {
      const fs = new MemoryFileSystem();
      const runs: Entry[][] = [[], [], [], []];
      for (const [i, entry] of entries.entries()) runs[deal[i] as number]?.push(entry);
      const nonEmpty = runs.filter((run) => run.length > 0);
      const inputs = await writeInputs(fs, DIR, nonEmpty);
      const contents = new Map(inputs.map((table, i) => [table.number, nonEmpty[i] as Entry[]]));
      const keys = [...new Map(entries.map((e) => [e.key.join(), e.key])).values()].sort(compareKeyBytes);
      const ends = below?.map((at) => at % keys.length).sort((a, b) => a - b);
      const blocker: TableMeta[] = ends
        ? [
            {
              number: 50,
              sizeBytes: 1,
              smallest: keys[ends[0] as number] as Uint8Array,
              largest: keys[ends[1] as number] as Uint8Array,
              minRevision: 0,
              maxRevision: 0,
              entries: 1,
            },
          ]
        : [];
      const levels = LevelSet.empty(DENSE_GUARDS.levelCount).apply({
        removed: [],
        guardsAdded: [],
        added: [
          ...inputs.map((table) => ({ level: 0, guard: null, table })),
          ...blocker.map((table) => ({ level: 2, guard: null, table })),
        ],
      });
      const job = compactionJob(levels, 0, 0);
      const tuning = { maxTableBytes, guards: DENSE_GUARDS, table: { blockBytes, restartInterval: 3 } };
      let next = FIRST_OUTPUT;
      const result = await runCompactionJob({
        fs,
        dir: DIR,
        job,
        levels,
        floor,
        tuning,
        allocateNumber: () => next++,
      });

      const runsNewestFirst = job.inputs.map((input) => contents.get(input.number) as Entry[]);
      const model = await modelCompaction(job, levels, runsNewestFirst, floor, tuning, FIRST_OUTPUT);
      const unsized = (change: typeof result.change) => ({
        ...change,
        added: change.added.map((added) => ({ ...added, table: { ...added.table, sizeBytes: 0 } })),
      });
      expect(unsized(result.change)).toEqual(unsized(model.result.change));
      expect(result.outputs.map((table) => table.number)).toEqual(model.tables.map((table) => table.number));
      for (const [i, table] of result.outputs.entries()) {
        expect(await readTable(fs, DIR, table.number)).toEqual(model.tables[i]?.entries as Entry[]);
        expect(table.sizeBytes).toBe(fs.bytes(tablePath(DIR, table.number)).byteLength);
      }
      expect(result.bytesWritten).toBe(result.outputs.reduce((sum, table) => sum + table.sizeBytes, 0));
      expect(result.bytesRead).toBe(inputs.reduce((sum, table) => sum + table.sizeBytes, 0));
      const files = [...inputs, ...result.outputs].map((table) => `${table.number}.sst`);
      expect((await fs.list(DIR)).sort()).toEqual(files.sort());

      // The manifest takes the edit over the state the job was picked from, and then names the outputs.
      const state = new ManifestState();
      state.apply([
        { kind: "next-file-number", number: 10_000 },
        ...[...inputs.map((table) => ({ table, level: 0 })), ...blocker.map((table) => ({ table, level: 2 }))].map(
          ({ table, level }) => ({
            kind: "add-table" as const,
            table: { ...table, level, fileBytes: table.sizeBytes },
          }),
        ),
      ]);
      state.apply(result.edit);
      expect(state.liveFiles()).toEqual([...blocker, ...result.outputs].map((t) => t.number).sort((a, b) => a - b));
    }),
    { numRuns: 120 },
  );
}, 60_000);

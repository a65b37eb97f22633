import type { FileSystem } from "../../../../src/io/fs/file-system.ts";
import type { CompactionJobTuning } from "../../../../src/storage/flsm/compaction/run-compaction-job.ts";
import { tablePath } from "../../../../src/storage/flsm/compaction/table-file-sink.ts";
import { compareEntries, type Entry } from "../../../../src/storage/flsm/entry.ts";
import { runCompaction } from "../../../../src/storage/flsm/levels/compaction.ts";
import type { CompactionJob } from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import { type GuardKey, LevelSet } from "../../../../src/storage/flsm/levels/level-set.ts";
import type { TableMeta } from "../../../../src/storage/flsm/levels/table-meta.ts";
import { mergeRuns } from "../../../../src/storage/flsm/merge.ts";
import { BlockCache } from "../../../../src/storage/flsm/table/block-cache.ts";
import { TableReader } from "../../../../src/storage/flsm/table/reader.ts";
import type { TableOptions } from "../../../../src/storage/flsm/table/writer.ts";
import { writeTableFile } from "../../../../src/storage/flsm/table-file-writer.ts";

/** Dense guards (one key in 4 at level 1, one in 2 from level 2), so that a few dozen keys meet several. */
export const DENSE_GUARDS = { levelCount: 4, firstLevelBits: 2, bitsStep: 1 };

/** Three level-0 tables of 40 keys each, overlapping, with versions of the same keys: about ten output tables. */
export function overlappingRuns(): Entry[][] {
  return [0, 1, 2].map((run) => {
    const entries: Entry[] = [];
    for (let i = 0; i < 40; i++) {
      const revision = 1 + run * 100 + i;
      const key = new TextEncoder().encode(`key-${String((i * 7 + run * 3) % 60).padStart(3, "0")}`);
      entries.push({ key, revision, value: i % 9 === 0 ? null : key, createRevision: revision, version: run + 1 });
    }
    return entries.sort(compareEntries);
  });
}

/** Writes each run (entries in internal-key order) as table `<first + i>.sst`; returns their metadata in the same order. */
export async function writeInputs(
  fs: FileSystem,
  dir: string,
  runs: readonly Iterable<Entry>[],
  options: Partial<TableOptions> = { blockBytes: 256 },
): Promise<TableMeta[]> {
  await fs.mkdirp(dir);
  const tables: TableMeta[] = [];
  for (const [i, entries] of runs.entries())
    tables.push(await writeTableFile(fs, dir, tablePath(dir, 1 + i), 1 + i, entries, options));
  return tables;
}

/** A level set whose level 0 holds `inputs` (and nothing else). */
export function levelZero(inputs: readonly TableMeta[], levelCount = DENSE_GUARDS.levelCount): LevelSet {
  return LevelSet.empty(levelCount).apply({
    removed: [],
    guardsAdded: [],
    added: inputs.map((table) => ({ level: 0, guard: null, table })),
  });
}

/** Every entry of the table `<number>.sst` in `dir`. */
export async function readTable(fs: FileSystem, dir: string, number: number): Promise<Entry[]> {
  const reader = await TableReader.open(fs, tablePath(dir, number), new BlockCache(0));
  try {
    return [...reader.entries({})];
  } finally {
    reader.close();
  }
}

/** What runCompaction makes of the same job over the runs in memory: each table's guard, number and entries. */
export async function modelCompaction(
  job: CompactionJob,
  levels: LevelSet,
  runsNewestFirst: readonly (readonly Entry[])[],
  floor: number,
  tuning: CompactionJobTuning,
  firstNumber: number,
) {
  const tables: { guard: GuardKey; number: number; entries: Entry[] }[] = [];
  let number = firstNumber;
  const sink = {
    startTable(guard: GuardKey) {
      tables.push({ guard, number: number++, entries: [] });
    },
    add(entry: Entry) {
      tables.at(-1)?.entries.push(entry);
    },
    finishTable: () => ({ number: tables.at(-1)?.number ?? 0, sizeBytes: 0 }),
  };
  const merged = mergeRuns(runsNewestFirst.map((run) => run.values()));
  const options = { floor, maxTableBytes: tuning.maxTableBytes, guards: tuning.guards };
  const result = await runCompaction(job, levels, merged, options, sink);
  return { tables, result };
}

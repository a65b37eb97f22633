import type { FileSystem } from "../../../io/fs/file-system.ts";
import type { CompactionResult } from "../levels/compaction.ts";
import { runCompaction } from "../levels/compaction.ts";
import type { CompactionJob } from "../levels/compaction-picker.ts";
import type { GuardTuning } from "../levels/guards.ts";
import type { LevelSet } from "../levels/level-set.ts";
import type { TableMeta } from "../levels/table-meta.ts";
import { editOf } from "../levels-manifest.ts";
import type { VersionEdit } from "../manifest/version-edit.ts";
import { mergeRuns } from "../merge.ts";
import { BlockCache } from "../table/block-cache.ts";
import { TableReader } from "../table/reader.ts";
import type { TableOptions } from "../table/writer.ts";
import { type AllocateNumber, TableFileSink, tablePath } from "./table-file-sink.ts";

/** How a job writes its output: plain data, so that it crosses to a Worker as it is. */
export interface CompactionJobTuning {
  /** An output table ends at the first key boundary at or past this estimate of its bytes. */
  readonly maxTableBytes: number;
  readonly guards: GuardTuning;
  readonly table?: Partial<TableOptions>;
}

export interface CompactionJobRequest {
  /** The engine's table directory (dir/flsm): inputs are read and outputs written there as `<number>.sst`. */
  readonly dir: string;
  readonly job: CompactionJob;
  /** The level set the job was picked from. */
  readonly levels: LevelSet;
  /** The GC floor when the job started (retained-versions.ts). */
  readonly floor: number;
  readonly tuning: CompactionJobTuning;
}

/** A request with what cannot cross to a Worker: the file system, and where numbers come from. */
export interface CompactionJobRun extends CompactionJobRequest {
  readonly fs: FileSystem;
  readonly allocateNumber: AllocateNumber;
}

export interface CompactionJobResult extends CompactionResult {
  /** What the manifest must log to install the result: `change` as version edit items. */
  readonly edit: VersionEdit;
  /** The tables written, in key order (each also in `change.added`, with its level and guard). */
  readonly outputs: readonly TableMeta[];
}

/**
 * Runs `job` on files: opens its input tables, merges them newest first, and writes the output
 * tables (runCompaction decides what is kept and where tables end), each synced, then syncs the
 * directory, so that every output is durable before the engine logs the edit. Nothing is installed:
 * the engine logs `edit`, swaps its level set for `levels.apply(change)` and then deletes the inputs.
 *
 * On any failure the tables written so far are removed and the error rethrown: a failed job leaves
 * no file behind (a crash may leave some, which no manifest edit names: the engine deletes them at
 * open). Inputs are read past the block cache, each block once, so a job does not evict what
 * readers use.
 *
 * File numbers come from `allocateNumber`, one per output table as it starts: in a Worker that is a
 * message to the main thread, which asks the manifest. Asking per table (rather than taking a block
 * of numbers in advance) wastes none, since how many tables a job writes is known only at its end;
 * and naming each table by its final number (rather than a temporary name renamed at the end) needs
 * no rename, no second directory sync, and no second kind of leftover for the engine to clean.
 */
export async function runCompactionJob(run: CompactionJobRun): Promise<CompactionJobResult> {
  const { fs, dir, job, levels, floor, tuning, allocateNumber } = run;
  const readers: TableReader[] = [];
  const sink = new TableFileSink(fs, dir, allocateNumber, tuning.table);
  try {
    const unCached = new BlockCache(0);
    for (const input of job.inputs) readers.push(await TableReader.open(fs, tablePath(dir, input.number), unCached));
    const merged = mergeRuns(readers.map((reader) => reader.entries({})));
    const options = { floor, maxTableBytes: tuning.maxTableBytes, guards: tuning.guards };
    const result = await runCompaction(job, levels, merged, options, sink);
    if (result.change.added.length > 0) await fs.syncDir(dir);
    return { ...result, edit: editOf(result.change), outputs: result.change.added.map(({ table }) => table) };
  } catch (error) {
    await sink.discard();
    throw error;
  } finally {
    for (const reader of readers) reader.close();
  }
}

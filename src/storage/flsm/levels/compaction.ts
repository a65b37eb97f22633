import { assert } from "../../../errors.ts";
import { compareKeyBytes, type Entry } from "../entry.ts";
import type { CompactionJob } from "./compaction-picker.ts";
import { type GuardTuning, isGuard } from "./guards.ts";
import { type GuardKey, type LevelChange, type LevelSet, sameGuard } from "./level-set.ts";
import { retainedVersions } from "./retained-versions.ts";
import type { TableMeta } from "./table-meta.ts";

/** A table the sink wrote: its file number and its real size. */
export interface WrittenTable {
  readonly number: number;
  readonly sizeBytes: number;
}

/**
 * Where a compaction's output goes: the engine's table writer (in a Worker). Tables come one at a
 * time: `startTable`, its entries in internal-key order, `finishTable`, which names the file. Each
 * call may return a promise, awaited before the next: a table writer appends through an async
 * FileSystem, and only waiting for it keeps one data block in memory rather than the whole output.
 */
export interface CompactionSink {
  startTable(guard: GuardKey): void | Promise<void>;
  add(entry: Entry): void | Promise<void>;
  finishTable(): WrittenTable | Promise<WrittenTable>;
}

export interface CompactionOptions {
  /** Versions below this revision are readable only as "the newest at or below it" (retained-versions.ts). */
  readonly floor: number;
  /** A table ends at the first key boundary at or past this estimate (`estimatedEntryBytes`). */
  readonly maxTableBytes: number;
  readonly guards: GuardTuning;
}

export interface CompactionResult {
  /** For the level set and the manifest: the inputs removed, the output tables with their guards, new guards. */
  readonly change: LevelChange;
  readonly bytesRead: number;
  readonly bytesWritten: number;
  readonly entriesRead: number;
  readonly entriesWritten: number;
}

/** Per entry, beyond its key and value: revision, counters and TTL as a table stores them, roughly. */
const ENTRY_OVERHEAD_BYTES = 16;

/** An entry's share of a table, estimated: the sink knows the real size only once the table is written. */
export function estimatedEntryBytes(entry: Entry): number {
  return entry.key.length + (entry.value?.length ?? 0) + ENTRY_OVERHEAD_BYTES;
}

/**
 * Runs `job`: merges, drops what the GC floor allows, and writes the rest to the target level in
 * tables that each lie inside one guard. The output is split at the target level's guards and at
 * the keys of the input that are guards of that level but not yet in it (PebblesDB's guards,
 * committed as compaction meets them). A new guard joins the target level and every deeper level
 * that lacks it — unless a table of one of them, not an input, holds keys on both sides of it: that
 * table would cross the guard, so the guard waits for a later compaction that meets the key again.
 * A table never ends inside one key's versions, so a read that finds a key in a table finds all
 * the versions that compaction carried.
 *
 *   level 1 → 2; guards of levels 2 and 3: ∅, "m"; input keys b c d m q r, one version each;
 *   "d" is a guard of level 2 by its hash; maxTableBytes: two entries' worth
 *   output: ∅ [b c] · "d" [d] · "m" [m q] [r]     change: guard "d" added to levels 2 and 3
 *   the same with a table a…e at level 3:  ∅ [b c] [d] · "m" [m q] [r]   ("d" waits)
 *
 * `merged` is the inputs merged newest first (`mergeRuns` over `job.inputs`); `levels` is the level
 * set the job was picked from.
 */
export async function runCompaction(
  job: CompactionJob,
  levels: LevelSet,
  merged: Iterator<Entry>,
  options: CompactionOptions,
  sink: CompactionSink,
): Promise<CompactionResult> {
  assert(options.maxTableBytes > 0, "maxTableBytes must be positive");
  const cursor = new GuardCursor(levels, job, options.guards);
  const added: LevelChange["added"][number][] = [];
  let entriesRead = 0;
  let entriesWritten = 0;
  const counted = (function* () {
    for (let next = merged.next(); !next.done; next = merged.next()) {
      entriesRead++;
      yield next.value;
    }
  })();
  let table: TableInProgress | undefined;
  const finish = async (open: TableInProgress): Promise<void> => {
    const { number, sizeBytes } = await sink.finishTable();
    added.push({ level: job.targetLevel, guard: open.guard, table: open.meta(number, sizeBytes) });
  };
  for (const entry of retainedVersions(counted, options.floor, job.bottom)) {
    if (table === undefined || compareKeyBytes(table.largest, entry.key) !== 0) {
      const crossed = cursor.moveTo(entry.key);
      if (table !== undefined && (crossed || table.bytes >= options.maxTableBytes)) {
        await finish(table);
        table = undefined;
      }
    }
    if (table === undefined) {
      await sink.startTable(cursor.guard);
      table = new TableInProgress(cursor.guard, entry);
    } else table.add(entry);
    await sink.add(entry);
    entriesWritten++;
  }
  if (table !== undefined) await finish(table);
  return {
    change: {
      removed: job.inputs.map(({ number }) => ({ level: job.sourceLevel, number })),
      guardsAdded: cursor.guardsAdded,
      added,
    },
    bytesRead: job.inputs.reduce((sum, input) => sum + input.sizeBytes, 0),
    bytesWritten: added.reduce((sum, { table }) => sum + table.sizeBytes, 0),
    entriesRead,
    entriesWritten,
  };
}

/** The metadata of the table being written. */
class TableInProgress {
  readonly smallest: Uint8Array;
  largest: Uint8Array;
  private minRevision: number;
  private maxRevision: number;
  private entries = 1;
  bytes: number;

  constructor(
    readonly guard: GuardKey,
    first: Entry,
  ) {
    this.smallest = this.largest = first.key;
    this.minRevision = this.maxRevision = first.revision;
    this.bytes = estimatedEntryBytes(first);
  }

  add(entry: Entry): void {
    this.largest = entry.key;
    this.minRevision = Math.min(this.minRevision, entry.revision);
    this.maxRevision = Math.max(this.maxRevision, entry.revision);
    this.entries++;
    this.bytes += estimatedEntryBytes(entry);
  }

  meta(number: number, sizeBytes: number): TableMeta {
    const { smallest, largest, minRevision, maxRevision, entries } = this;
    return { number, sizeBytes, smallest, largest, minRevision, maxRevision, entries };
  }
}

/** Follows the output's keys through the target level's guards, committing new guards as it meets them. */
class GuardCursor {
  readonly guardsAdded: { level: number; key: Uint8Array }[] = [];
  private readonly level: number;
  private readonly inputs: ReadonlySet<number>;
  /** Index in the target level's guards of the one holding the last key; -1 before the first key. */
  private index = -1;
  guard: GuardKey = null;

  constructor(
    private readonly levels: LevelSet,
    job: CompactionJob,
    private readonly tuning: GuardTuning,
  ) {
    this.level = job.targetLevel;
    this.inputs = new Set(job.inputs.map(({ number }) => number));
  }

  /** Moves to the guard holding `key` (keys come in order); true when it is another guard than the last key's. */
  moveTo(key: Uint8Array): boolean {
    const guards = this.levels.guards(this.level);
    const before = this.guard;
    if (this.index < 0) {
      this.index = this.levels.guardIndex(this.level, key);
      this.guard = guards[this.index]?.key ?? null;
    }
    // A guard committed earlier lies before guards[index + 1]: passing that one leaves it behind too.
    for (let next = guards[this.index + 1]; next?.key && compareKeyBytes(next.key, key) <= 0; ) {
      this.guard = next.key;
      next = guards[++this.index + 1];
    }
    if (!sameGuard(this.guard, key) && isGuard(key, this.level, this.tuning) && !this.splitsATable(key)) {
      for (let level = this.level; level < this.levels.levelCount; level++)
        if (!this.levels.hasGuard(level, key)) this.guardsAdded.push({ level, key });
      this.guard = key;
    }
    return !sameGuard(before, this.guard);
  }

  /** Whether a table other than the inputs, at the target level or deeper, holds keys on both sides of `key`. */
  private splitsATable(key: Uint8Array): boolean {
    for (let level = this.level; level < this.levels.levelCount; level++) {
      const guard = this.levels.guards(level)[this.levels.guardIndex(level, key)];
      for (const table of guard?.tables ?? [])
        if (
          !this.inputs.has(table.number) &&
          compareKeyBytes(table.smallest, key) < 0 &&
          compareKeyBytes(key, table.largest) <= 0
        )
          return true;
    }
    return false;
  }
}

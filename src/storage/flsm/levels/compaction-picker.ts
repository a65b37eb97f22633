import { assert } from "../../../errors.ts";
import { compareKeyBytes } from "../entry.ts";
import type { GuardKey, LevelSet } from "./level-set.ts";
import { inclusiveRange, type TableMeta } from "./table-meta.ts";

/**
 * When the levels need compacting, and when writes must wait for it.
 *
 * - Level 0 (whole memtable flushes, overlapping anywhere) compacts into level 1 when it holds
 *   `level0CompactionTables`; at `level0SlowdownTables` the engine slows writes down and at
 *   `level0StopTables` it stops them until a compaction catches up (LevelDB's 4, 8 and 12).
 * - A guard of a level ≥ 1 compacts into the next level when its tables stack `guardRunsMax` deep
 *   (a point read in the guard would consult that many) or its bytes reach the level's bound,
 *   `firstLevelGuardBytes × guardBytesGrowth^(level − 1)`. The depth bound is the same at every
 *   level, so a point read costs at most `guardRunsMax` table probes per level wherever the data
 *   sits; the byte bound grows with the level so that the deeper levels hold the bulk of the data
 *   (with the default guard choice each level has 4× the guards of the one above, so a level's
 *   capacity grows about 8× per level, near LevelDB's 10×).
 * - A guard of the bottom level has nowhere to go: it compacts into itself (its tables merged into
 *   one run, older versions dropped) when its depth reaches `guardRunsMax`; its size is not bounded.
 *
 * Every job takes all the tables of level 0 or of one guard: what arrives in a guard then comes in
 * batches each newer than the last, the order the read path relies on (docs/internals/flsm.md).
 * The engine runs one compaction at a time against the level set it was picked from.
 *
 *   level 0: 4 tables                         → score 1.0   level 0 → 1, all 4 tables
 *   level 1 guard "g": 3 runs, 200 MiB of 64  → score 3.1   level 1 → 2, the guard's tables   ← picked
 *   level 4 (bottom) guard "t": 2 runs        → score 0.5   nothing
 */
export interface CompactionTuning {
  readonly level0CompactionTables: number;
  readonly level0SlowdownTables: number;
  readonly level0StopTables: number;
  readonly firstLevelGuardBytes: number;
  readonly guardBytesGrowth: number;
  readonly guardRunsMax: number;
}

export const DEFAULT_COMPACTION_TUNING: CompactionTuning = {
  level0CompactionTables: 4,
  level0SlowdownTables: 8,
  level0StopTables: 12,
  firstLevelGuardBytes: 64 * 1024 * 1024,
  guardBytesGrowth: 2,
  guardRunsMax: 4,
};

/** One compaction: its inputs (all of level 0's tables, or all of one guard's) and where the output goes. */
export interface CompactionJob {
  readonly sourceLevel: number;
  /** The next level, or the source level itself at the bottom. */
  readonly targetLevel: number;
  /** The source guard (null: level 0 or a level's sentinel). */
  readonly guard: GuardKey;
  /** Newest first, the order `mergeRuns` takes its sources in. */
  readonly inputs: readonly TableMeta[];
  /**
   * Nothing older below: no table outside the inputs, at the target level or deeper, holds keys in
   * the inputs' key range, so a tombstone at or below the GC floor has nothing left to hide.
   */
  readonly bottom: boolean;
  /** Urgency: 1 at the trigger, more past it. */
  readonly score: number;
}

export type WriteStall = "none" | "slowdown" | "stop";

/** What the engine does with writes, from level 0's backlog. */
export function writeStall(levels: LevelSet, tuning: CompactionTuning = DEFAULT_COMPACTION_TUNING): WriteStall {
  const tables = levels.guards(0)[0]?.tables.length ?? 0;
  if (tables >= tuning.level0StopTables) return "stop";
  return tables >= tuning.level0SlowdownTables ? "slowdown" : "none";
}

/** The byte bound of a guard of `level` (≥ 1, above the bottom). */
export function guardBytesMax(level: number, tuning: CompactionTuning): number {
  return tuning.firstLevelGuardBytes * tuning.guardBytesGrowth ** (level - 1);
}

/** The most tables that hold any one key: how many a point read may have to consult. */
export function overlapDepth(tables: readonly TableMeta[]): number {
  // Starts sort before ends at the same key: ranges are inclusive, so touching tables overlap.
  const events = tables.flatMap((table) => [
    { key: table.smallest, step: 1 },
    { key: table.largest, step: -1 },
  ]);
  events.sort((a, b) => compareKeyBytes(a.key, b.key) || b.step - a.step);
  let depth = 0;
  let deepest = 0;
  for (const { step } of events) deepest = Math.max(deepest, (depth += step));
  return deepest;
}

/** The job that compacts all of `sourceLevel`'s guard number `guardIndex` (level 0: its one guard). */
export function compactionJob(levels: LevelSet, sourceLevel: number, guardIndex: number, score = 1): CompactionJob {
  const guard = levels.guards(sourceLevel)[guardIndex];
  assert(
    guard !== undefined && guard.tables.length > 0,
    () => `level ${sourceLevel} guard ${guardIndex} has no tables`,
  );
  const targetLevel = Math.min(sourceLevel + 1, levels.levelCount - 1);
  const inputs = guard.tables;
  const smallest = inputs.map((table) => table.smallest).reduce((a, b) => (compareKeyBytes(a, b) <= 0 ? a : b));
  const largest = inputs.map((table) => table.largest).reduce((a, b) => (compareKeyBytes(a, b) >= 0 ? a : b));
  const numbers = new Set(inputs.map((table) => table.number));
  let bottom = true;
  for (let level = targetLevel; level < levels.levelCount && bottom; level++)
    bottom = levels.tablesInRange(level, inclusiveRange(smallest, largest)).every(({ number }) => numbers.has(number));
  return { sourceLevel, targetLevel, guard: guard.key, inputs, bottom, score };
}

/** How far past its trigger a guard of `level` is (≥ 1: due). */
function guardScore(levels: LevelSet, level: number, tables: readonly TableMeta[], tuning: CompactionTuning): number {
  if (level === 0) return tables.length / tuning.level0CompactionTables;
  const runs = overlapDepth(tables) / tuning.guardRunsMax;
  if (level === levels.levelCount - 1) return tables.length > 1 ? runs : 0; // one run: nothing to merge
  const bytes = tables.reduce((sum, table) => sum + table.sizeBytes, 0);
  return Math.max(runs, bytes / guardBytesMax(level, tuning));
}

/** The most urgent job (highest score; on a tie the shallower level, then the first guard); none when nothing is due. */
export function pickCompaction(
  levels: LevelSet,
  tuning: CompactionTuning = DEFAULT_COMPACTION_TUNING,
): CompactionJob | undefined {
  assert(tuning.guardRunsMax >= 2, "a guard of one run has nothing to merge");
  let best: { level: number; guardIndex: number; score: number } | undefined;
  for (let level = 0; level < levels.levelCount; level++)
    levels.guards(level).forEach((guard, guardIndex) => {
      if (guard.tables.length === 0) return;
      const score = guardScore(levels, level, guard.tables, tuning);
      if (score >= 1 && (best === undefined || score > best.score)) best = { level, guardIndex, score };
    });
  return best && compactionJob(levels, best.level, best.guardIndex, best.score);
}

import { expect, test } from "bun:test";
import {
  type CompactionTuning,
  overlapDepth,
  pickCompaction,
  writeStall,
} from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import { type GuardKey, LevelSet } from "../../../../src/storage/flsm/levels/level-set.ts";
import type { TableMeta } from "../../../../src/storage/flsm/levels/table-meta.ts";
import { bytes, numbers, table } from "./tables.ts";

const tuning: CompactionTuning = {
  level0CompactionTables: 4,
  level0SlowdownTables: 8,
  level0StopTables: 12,
  firstLevelGuardBytes: 1000,
  guardBytesGrowth: 2,
  guardRunsMax: 4,
};

/** Three levels (0, 1 and the bottom, 2) with guard "m" at levels 1 and 2, and `tables` added. */
function levelsWith(tables: { level: number; guard: GuardKey; table: TableMeta }[]): LevelSet {
  const guardsAdded = [1, 2].map((level) => ({ level, key: bytes("m") }));
  return LevelSet.empty(3).apply({ removed: [], guardsAdded, added: tables });
}

const level0 = (count: number) =>
  Array.from({ length: count }, (_, i) => ({ level: 0, guard: null, table: table(i + 1, "a…z", [i + 1, i + 1], 10) }));

test("level 0 compacts into level 1 at 4 tables, all of them, newest first", () => {
  expect(pickCompaction(levelsWith(level0(3)), tuning)).toBeUndefined();
  const job = pickCompaction(levelsWith(level0(4)), tuning);
  expect(job && { ...job, inputs: numbers(job.inputs) }).toEqual({
    sourceLevel: 0,
    targetLevel: 1,
    guard: null,
    inputs: [4, 3, 2, 1],
    bottom: true,
    score: 1,
  });
});

test("level 0's backlog slows writes at 8 tables and stops them at 12", () => {
  expect([7, 8, 11, 12].map((count) => writeStall(levelsWith(level0(count)), tuning))).toEqual([
    "none",
    "slowdown",
    "slowdown",
    "stop",
  ]);
});

test("a guard compacts into the next level when its bytes reach the level's bound, which doubles per level", () => {
  const at = (level: number, size: number) =>
    levelsWith([{ level, guard: bytes("m"), table: table(1, "m…p", [1, 2], size) }]);
  expect(pickCompaction(at(1, 999), tuning)).toBeUndefined();
  const job = pickCompaction(at(1, 1500), tuning);
  expect(job && [job.sourceLevel, job.targetLevel, job.guard, job.score]).toEqual([1, 2, bytes("m"), 1.5]);
  // The bottom level has no byte bound: a lone table there has nothing to merge with.
  expect(pickCompaction(at(2, 1_000_000), tuning)).toBeUndefined();
});

test("a guard compacts when its tables stack 4 deep; side by side they do not count", () => {
  const stacked = [1, 2, 3, 4].map((n) => ({ level: 1, guard: null, table: table(n, "a…k", [n, n], 1) }));
  const job = pickCompaction(levelsWith(stacked.slice(0, 3)), tuning);
  expect(job).toBeUndefined();
  expect(numbers(pickCompaction(levelsWith(stacked), tuning)?.inputs ?? [])).toEqual([4, 3, 2, 1]);
  const sideBySide = ["a…b", "c…d", "e…f", "g…h", "i…j"].map((range, n) => ({
    level: 1,
    guard: null,
    table: table(n + 1, range, [n, n], 1),
  }));
  expect(pickCompaction(levelsWith(sideBySide), tuning)).toBeUndefined();
});

test("a guard of the bottom level compacts into itself once 4 deep", () => {
  const stacked = [1, 2, 3, 4].map((n) => ({ level: 2, guard: bytes("m"), table: table(n, "m…q", [n, n], 1) }));
  const job = pickCompaction(levelsWith(stacked), tuning);
  expect(job && [job.sourceLevel, job.targetLevel, job.bottom]).toEqual([2, 2, true]);
});

test("the most urgent job goes first", () => {
  const busyGuard = { level: 1, guard: bytes("m"), table: table(9, "m…p", [1, 2], 3000) };
  const job = pickCompaction(levelsWith([...level0(4), busyGuard]), tuning);
  expect(job && [job.sourceLevel, job.score]).toEqual([1, 3]);
  expect(pickCompaction(levelsWith([...level0(8), busyGuard]), tuning)?.sourceLevel).toBe(1);
  expect(pickCompaction(levelsWith([...level0(13), busyGuard]), tuning)?.sourceLevel).toBe(0);
});

test("a job is at the bottom only when no other table at the target level or deeper holds its keys", () => {
  const older = (range: string, level: number) => ({ level, guard: null, table: table(20, range, [1, 1], 1) });
  expect(pickCompaction(levelsWith([...level0(4), older("a…c", 2)]), tuning)?.bottom).toBe(false);
  expect(pickCompaction(levelsWith([...level0(4), older("a…c", 1)]), tuning)?.bottom).toBe(false);
  const narrow = level0(4).map((t) => ({ ...t, table: { ...t.table, smallest: bytes("d"), largest: bytes("f") } }));
  expect(pickCompaction(levelsWith([...narrow, older("a…c", 2)]), tuning)?.bottom).toBe(true);
  expect(pickCompaction(levelsWith([...narrow, older("f…g", 2)]), tuning)?.bottom).toBe(false);
});

test("overlap depth: how many tables hold one key at most; tables that touch at a key overlap", () => {
  const depth = (...ranges: string[]) => overlapDepth(ranges.map((range, n) => table(n, range, [1, 1])));
  expect(depth()).toBe(0);
  expect(depth("a…c", "d…f")).toBe(1);
  expect(depth("a…c", "c…f")).toBe(2);
  expect(depth("a…z", "b…c", "c…d", "e…f")).toBe(3);
});

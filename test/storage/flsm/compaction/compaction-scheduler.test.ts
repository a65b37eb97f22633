import { expect, test } from "bun:test";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import { type CompactionRunner, inProcessRunner } from "../../../../src/storage/flsm/compaction/compaction-runner.ts";
import { CompactionScheduler } from "../../../../src/storage/flsm/compaction/compaction-scheduler.ts";
import type { CompactionJobResult } from "../../../../src/storage/flsm/compaction/run-compaction-job.ts";
import { tablePath } from "../../../../src/storage/flsm/compaction/table-file-sink.ts";
import { compareEntries, type Entry } from "../../../../src/storage/flsm/entry.ts";
import { type CompactionTuning, pickCompaction } from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import type { LevelSet } from "../../../../src/storage/flsm/levels/level-set.ts";
import { table } from "../levels/tables.ts";
import { DENSE_GUARDS, levelZero, overlappingRuns, readTable, writeInputs } from "./inputs.ts";

const DIR = "db/flsm";
/** Level 0 compacts at 3 tables; a guard at 2 runs or 600 bytes: the three inputs cascade down the levels. */
const tuning: CompactionTuning = {
  level0CompactionTables: 3,
  level0SlowdownTables: 5,
  level0StopTables: 7,
  firstLevelGuardBytes: 600,
  guardBytesGrowth: 2,
  guardRunsMax: 2,
};

/** The engine around a scheduler: a level set, a manifest-free install that swaps it and deletes the inputs. */
async function engine(wrap: (runner: CompactionRunner) => CompactionRunner = (runner) => runner) {
  const fs = new MemoryFileSystem();
  const runs = overlappingRuns();
  let levels: LevelSet = levelZero(await writeInputs(fs, DIR, runs));
  let next = 100;
  const installed: CompactionJobResult[] = [];
  let hold: Promise<void> | undefined;
  const reports: string[] = [];
  const scheduler = new CompactionScheduler({
    dir: DIR,
    levels: () => levels,
    floor: () => 0,
    install: async (result) => {
      await hold;
      levels = levels.apply(result.change);
      for (const { number } of result.change.removed) await fs.remove(tablePath(DIR, number));
      installed.push(result);
    },
    runner: wrap(inProcessRunner(fs, () => next++)),
    jobTuning: { maxTableBytes: 300, guards: DENSE_GUARDS, table: { blockBytes: 128 } },
    tuning,
    report: (line) => reports.push(line),
  });
  return {
    fs,
    scheduler,
    installed,
    reports,
    entries: runs.flat().sort(compareEntries),
    levels: () => levels,
    /** Holds every install until the returned function is called. */
    holdInstalls(): () => void {
      let release = () => {};
      hold = new Promise((resolve) => (release = resolve));
      return () => {
        hold = undefined;
        release();
      };
    },
  };
}

/** Every table of every level, read back and merged in internal-key order. */
async function everyEntry(fs: MemoryFileSystem, levels: LevelSet): Promise<Entry[]> {
  const numbers = Array.from({ length: levels.levelCount }, (_, level) => levels.tables(level)).flat();
  const entries = (await Promise.all(numbers.map((t) => readTable(fs, DIR, t.number)))).flat();
  return entries.sort(compareEntries);
}

const oneTurn = () => new Promise((resolve) => setImmediate(resolve));

test("a wake compacts until no job is due: level 0 emptied, cascades below, every version kept, no file left over", async () => {
  const { fs, scheduler, installed, entries, levels } = await engine();
  await scheduler.wake();
  expect(installed.length).toBeGreaterThan(1);
  expect(pickCompaction(levels(), tuning)).toBeUndefined();
  expect(levels().tables(0)).toEqual([]);
  expect(levels().tables(2).length).toBeGreaterThan(0);
  // Floor 0 keeps every version; the data is all there, once.
  expect(await everyEntry(fs, levels())).toEqual(entries);
  const live = Array.from({ length: levels().levelCount }, (_, level) => levels().tables(level)).flat();
  expect((await fs.list(DIR)).sort()).toEqual(live.map((t) => `${t.number}.sst`).sort());
  const { amplification } = scheduler;
  expect(amplification.compactions).toBe(installed.length);
  expect(amplification.compactionBytesWritten).toBe(installed.reduce((sum, r) => sum + r.bytesWritten, 0));
  expect(amplification.compactionBytesRead).toBe(installed.reduce((sum, r) => sum + r.bytesRead, 0));
  expect(scheduler.running).toBe(false);
});

test("one job at a time: wakes during a job extend the drain instead of starting a second", async () => {
  let concurrent = 0;
  let most = 0;
  const { scheduler, installed, holdInstalls } = await engine((runner) => ({
    run: async (request) => {
      most = Math.max(most, ++concurrent);
      try {
        return await runner.run(request);
      } finally {
        concurrent--;
      }
    },
    close: () => runner.close(),
  }));
  const release = holdInstalls();
  const first = scheduler.wake();
  for (let turn = 0; turn < 5; turn++) {
    await oneTurn();
    expect(scheduler.wake()).toBe(first);
  }
  expect(installed).toEqual([]);
  release();
  await first;
  expect(most).toBe(1);
  expect(installed.length).toBeGreaterThan(1);
});

test("stop waits for the running job to be installed, starts no other, and closes the runner", async () => {
  let closed = false;
  const { scheduler, installed, holdInstalls, levels } = await engine((runner) => ({
    run: (request) => runner.run(request),
    close: async () => {
      closed = true;
    },
  }));
  const release = holdInstalls();
  void scheduler.wake();
  let stopped = false;
  const stopping = scheduler.stop().then(() => {
    stopped = true;
  });
  for (let turn = 0; turn < 5; turn++) await oneTurn();
  expect({ stopped, closed, installed: installed.length }).toEqual({ stopped: false, closed: false, installed: 0 });
  release();
  await stopping;
  expect({ closed, installed: installed.length }).toEqual({ closed: true, installed: 1 });
  // A job was still due, but a stopped scheduler runs none.
  expect(pickCompaction(levels(), tuning)).toBeDefined();
  await scheduler.wake();
  expect(installed.length).toBe(1);
});

test("a failed job is counted and reported, changes nothing, and runs again at the next wake", async () => {
  const { fs, scheduler, installed, reports, levels } = await engine();
  const before = levels();
  const files = (await fs.list(DIR)).sort();
  fs.injectFault({ op: "sync", code: "ENOSPC", pathIncludes: ".sst", after: 1 });
  await scheduler.wake();
  expect(scheduler.failures).toBe(1);
  expect(reports).toHaveLength(1);
  expect(reports[0]).toContain("compaction of level 0 into 1 (tables 3, 2, 1) failed: ENOSPC");
  expect(levels()).toBe(before);
  expect((await fs.list(DIR)).sort()).toEqual(files);
  fs.clearFaults();
  await scheduler.wake();
  expect(installed.length).toBeGreaterThan(1);
  expect(levels().tables(0)).toEqual([]);
});

test("writes slow down and stop as level 0's backlog reaches the tuning's bounds", async () => {
  const { scheduler } = await engine();
  expect(scheduler.writeStall()).toBe("none");
  const stall = (count: number) =>
    new CompactionScheduler({
      dir: DIR,
      levels: () => levelZero(Array.from({ length: count }, (_, i) => table(i + 1, "a…z", [i + 1, i + 1]))),
      floor: () => 0,
      install: async () => {},
      runner: inProcessRunner(new MemoryFileSystem(), () => 1),
      jobTuning: { maxTableBytes: 1, guards: DENSE_GUARDS },
      tuning,
    }).writeStall();
  expect([4, 5, 6, 7].map(stall)).toEqual(["none", "slowdown", "slowdown", "stop"]);
});

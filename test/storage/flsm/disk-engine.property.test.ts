import { expect, test } from "bun:test";
import fc from "fast-check";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { runCompactionJob } from "../../../src/storage/flsm/compaction/run-compaction-job.ts";
import { type CompactHook, type FlsmEngine, openFlsmEngine } from "../../../src/storage/flsm/disk-engine.ts";
import type { GuardTuning } from "../../../src/storage/flsm/levels/guards.ts";
import { createMvccStore } from "../../../src/storage/mvcc/store.ts";
import type { LogEntry } from "../../../src/storage/ops.ts";
import {
  command,
  expectSameState,
  gapsArb,
  KEYS,
  type Observed,
  observe,
  observerOptions,
  spacedBy,
  step,
  unobserved,
} from "./store-model.ts";

/**
 * Model-based test of the FLSM engine on disk (store-model.ts; the memory engine is the model): the
 * same random operation sequences, with memtables so small that most commands freeze one, flushed
 * to real tables (64-byte blocks) on the in-memory file system, flushes failing at times (a full
 * disk under the tables, or a manifest that cannot sync), and restarts: the engine closed, the
 * power cut or not, the engine reopened from its manifest and tables and the log (a list of the
 * commands, the WAL's stand-in) replayed after its flushed revision; revisions dense or with gaps. The model never restarts: a
 * restart must not show. Replayed events must be the model's for those revisions, and the TTLs a
 * reopened engine reports must cover every key still due to expire.
 */

const DIR = "/data/flsm";
const TABLE = { blockBytes: 64, restartInterval: 2 };
/** Dense guards (one key in 4 at level 1, one in 2 at level 2) and early compactions: every level and guard is hit. */
const GUARDS: GuardTuning = { levelCount: 3, firstLevelBits: 2, bitsStep: 1 };
const COMPACTING_TUNING = {
  table: TABLE,
  guards: GUARDS,
  compaction: {
    level0CompactionTables: 2,
    level0SlowdownTables: 8,
    level0StopTables: 12,
    firstLevelGuardBytes: 200,
    guardBytesGrowth: 2,
    guardRunsMax: 2,
  },
};

/** The engine's compactions on this thread, through the test's (fault-injecting) file system. */
function inProcessCompactions(fs: MemoryFileSystem): CompactHook {
  return ({ job, levels, floor, dir, allocateFileNumber }) =>
    runCompactionJob({
      fs,
      dir,
      job,
      levels,
      floor,
      allocateNumber: allocateFileNumber,
      tuning: { maxTableBytes: 60, guards: GUARDS, table: TABLE },
    });
}

/** The (key, revision, deadline) reports still due: the key's newest version is live and written at that revision. */
function due(observed: Observed, model: Observed): string[] {
  const records = new Map(model.store.readRecords(KEYS).map((record) => [record.key, record]));
  const due = observed.expiries.filter(([key, revision]) => {
    const record = records.get(key);
    return record?.value !== undefined && record.modRevision === revision;
  });
  return [...new Set(due.map((report) => JSON.stringify(report)))].sort();
}

test("the FLSM engine on disk answers every operation as the memory engine does, across flushes and restarts", async () => {
  const reached = { restartsFromTables: 0, mostTables: 0, failedFlushes: 0, compactions: 0, deepestLevel: 0 };
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 0, max: 4 }),
      // 1 byte: every command that writes freezes the memtable; 2,000: a few commands share one.
      fc.constantFrom(1, 600, 2_000),
      fc.boolean(),
      fc.boolean(),
      gapsArb,
      fc.array(command, { maxLength: 60, size: "max" }),
      async (historyRevisions, memtableBytes, powerCut, compacting, gaps, commands) => {
        const fs = new MemoryFileSystem();
        const log: LogEntry[] = [];
        let engine: FlsmEngine | undefined;
        let faults = 0;
        const open = async (): Promise<Observed> => {
          const observed = unobserved();
          engine = await openFlsmEngine({
            fs,
            dir: DIR,
            memtableBytes,
            blockCacheBytes: 4096,
            storeOptions: observerOptions(observed, historyRevisions),
            report: () => {},
            ...(compacting
              ? { compact: inProcessCompactions(fs), tuning: COMPACTING_TUNING }
              : { tuning: { table: TABLE } }),
          });
          observed.store = engine.store;
          for (const entry of log) if (entry.revision > engine.flushedRevision) engine.store.apply(entry);
          return observed;
        };
        const settle = async () => {
          // Bounded: a failing flush leaves its memtable frozen for good.
          const busy = () => engine!.store.memtableStats().frozen > 0 || engine!.stats().compacting;
          for (let turn = 0; turn < 500 && busy(); turn++) await new Promise((resolve) => setImmediate(resolve));
        };
        const restart = async (model: Observed, flsm: Observed): Promise<Observed> => {
          for (const snapshot of [...model.snapshots.splice(0), ...flsm.snapshots.splice(0)]) snapshot.release();
          await settle();
          const stats = engine!.stats();
          reached.mostTables = Math.max(reached.mostTables, stats.levels[0]!.tables);
          reached.failedFlushes += stats.flushFailures;
          reached.compactions += stats.compactions;
          reached.deepestLevel = Math.max(
            reached.deepestLevel,
            ...stats.levels.filter((l) => l.tables > 0).map((l) => l.level),
          );
          await engine!.close();
          fs.clearFaults();
          if (powerCut) fs.crash();
          const reopened = await open();
          if (engine!.flushedRevision > 0) reached.restartsFromTables++;
          expect(reopened.events).toEqual(model.events.filter(([revision]) => revision > engine!.flushedRevision));
          expect(due(reopened, model)).toEqual(due(model, model));
          reopened.events.splice(0, Infinity, ...model.events);
          reopened.expiries.splice(0, Infinity, ...model.expiries);
          return reopened;
        };
        const nextRevision = spacedBy(gaps);
        const model = observe({ create: (options) => createMvccStore(options) }, historyRevisions);
        let flsm = await open();
        try {
          for (const cmd of [...commands, { kind: "restart" as const }]) {
            if (cmd.kind === "restart") flsm = await restart(model, flsm);
            else
              await step(model, flsm, cmd, {
                setFlushesFailing(failing) {
                  fs.clearFaults();
                  if (!failing) return;
                  // Every other time the manifest's sync fails: it then takes no edit until a restart,
                  // and the table of the edit in doubt stays for the next start to decide on.
                  if (faults++ % 2 === 0) fs.injectFault({ op: "append", code: "ENOSPC", pathIncludes: ".sst" });
                  else fs.injectFault({ op: "sync", code: "EIO", pathIncludes: "MANIFEST" });
                },
                settle,
                applied: (entry) => log.push(entry),
                nextRevision,
              });
            expectSameState(model, flsm);
          }
        } finally {
          await engine?.close();
        }
      },
    ),
    { numRuns: 300 },
  );
  // The runs reached what they are for: tables stacked at level 0, restarts that read them, failed flushes.
  expect(reached.mostTables).toBeGreaterThanOrEqual(4);
  expect(reached.restartsFromTables).toBeGreaterThan(50);
  expect(reached.failedFlushes).toBeGreaterThan(5);
  expect(reached.compactions).toBeGreaterThan(50);
  expect(reached.deepestLevel).toBe(GUARDS.levelCount - 1);
}, 120_000);

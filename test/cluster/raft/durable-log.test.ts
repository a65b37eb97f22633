import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { readSnapshotFile, SEGMENT, SNAPSHOT } from "../../../src/cluster/raft/durable-log-format.ts";
import { RaftLogEngine } from "../../../src/cluster/raft/group-log-engine.ts";
import { GROUP_SNAPSHOT } from "../../../src/cluster/raft/group-log-format.ts";
import { MemoryStorage, type PersistentRaftLog } from "../../../src/cluster/raft/storage.ts";
import type { Entry, HardState } from "../../../src/cluster/raft/types.ts";
import type { FileSystem } from "../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { bytes } from "../../helpers/bytes.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";
import { interceptWrites } from "../../helpers/storage.ts";

const DIR = "/data/raft";
const FILE = `${DIR}/00000000000000000000.raftlog`;
const entry = (index: number, term: number, text: string | null = `e${index}`): Entry => ({
  index,
  term,
  data: text === null ? null : bytes(text),
});
/** A MemoryStorage holding what `from` holds. */
function copyOf(from: MemoryStorage): MemoryStorage {
  const copy = new MemoryStorage();
  copy.applySnapshot(from.snapshot());
  copy.append(from.entries(from.firstIndex(), from.lastIndex() + 1));
  copy.setHardState(from.hardState());
  return copy;
}
/** A Raft log on disk under test: the contract tests below run against each. */
interface Implementation {
  name: string;
  open(fs: FileSystem): Promise<PersistentRaftLog>;
  /**
   * What a crash and a reopen leave beside the log: only the newest snapshot's files, unless a
   * failed cleanup (`cleanupFailed`) left older ones for the next.
   */
  checkFiles(fs: MemoryFileSystem, cleanupFailed: boolean): Promise<void>;
}

const IMPLEMENTATIONS: readonly Implementation[] = [
  {
    name: "DurableRaftLog",
    open: (fs) => DurableRaftLog.open(fs, DIR),
    async checkFiles(fs, cleanupFailed) {
      if (cleanupFailed) return;
      // The newest snapshot, and the segments from the one it names on.
      const names = (await fs.list(DIR)).filter((name) => !name.endsWith(".tmp"));
      const snapshots = names.filter((name) => SNAPSHOT.parseFileName(name) !== undefined);
      expect(snapshots.length).toBeLessThanOrEqual(1);
      const firstSegment =
        snapshots.length === 0
          ? 0
          : readSnapshotFile(await fs.readFile(`${DIR}/${snapshots[0]}`), snapshots[0]!).firstSegment;
      const segments = names.flatMap((name) => SEGMENT.parseFileName(name) ?? []);
      expect(segments.every((sequence) => sequence >= firstSegment)).toBe(true);
    },
  },
  {
    // Small segments and a small inline bound, so that these tests rotate segments and put some
    // snapshots' data ("state 100", "leader 10") in files of their own.
    name: "a RaftLogEngine's group",
    open: async (fs) =>
      (await RaftLogEngine.open(fs, DIR, undefined, { segmentBytesMax: 400, snapshotInlineBytesMax: 8 })).group(7),
    async checkFiles(fs) {
      // The open removed every data file no record names: the group's snapshot needs one at most.
      const dataFiles = (await fs.list(DIR)).filter((name) => GROUP_SNAPSHOT.parseFileName(name) !== undefined);
      expect(dataFiles.length).toBeLessThanOrEqual(1);
    },
  },
];

const allEntries = (log: { lastIndex(): number; entries(lo: number, hi: number): Entry[] }) =>
  log.entries(1, log.lastIndex() + 1);

for (const impl of IMPLEMENTATIONS) {
  describe(impl.name, () => {
    test("what persist wrote is there after a reopen, and after a crash", async () => {
      const fs = new MemoryFileSystem();
      const log = await impl.open(fs);
      await log.persist({ term: 1, vote: 2, commit: 0 }, [entry(1, 1), entry(2, 1, null)]);
      await log.persist({ term: 2, vote: 0, commit: 2 }, [entry(3, 2)]);
      // A leader of term 3 overwrote entry 3 onwards, with a configuration change among them.
      await log.persist(undefined, [
        entry(3, 3, "x"),
        entry(4, 3),
        { index: 5, term: 3, data: null, conf: { type: "addLearner", node: 4 } },
      ]);
      fs.crash();
      const reopened = await impl.open(fs);
      expect(reopened.hardState()).toEqual({ term: 2, vote: 0, commit: 2 });
      expect(allEntries(reopened)).toEqual([
        entry(1, 1),
        entry(2, 1, null),
        entry(3, 3, "x"),
        entry(4, 3),
        { index: 5, term: 3, data: null, conf: { type: "addLearner", node: 4 } },
      ]);
      expect(reopened.term(3)).toBe(3);
    });

    // A sync that failed may have lost what it was to write for good (the kernel marks the pages
    // clean): the log refuses every call until it is reopened. A failed append (a full disk) is cut
    // back, and the log goes on. Either way nothing of the failed write is visible.
    for (const { op, code, goesOn } of [
      { op: "sync", code: "EIO", goesOn: false },
      { op: "append", code: "ENOSPC", goesOn: true },
    ] as const)
      test(`a failed ${op} leaves nothing visible; the log ${goesOn ? "goes on" : "refuses every call until it is reopened"}`, async () => {
        const fs = new MemoryFileSystem();
        const log = await impl.open(fs);
        await log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)]);
        fs.injectFault({ op, code, times: 1 });
        expect(await rejectionMessage(log.persist(undefined, [entry(2, 1)]))).toMatch(code);
        expect(log.lastIndex()).toBe(1);
        const again = log.persist(undefined, [entry(2, 1, "again")]);
        if (goesOn) await again;
        else {
          expect(await rejectionMessage(again)).toMatch("must be reopened");
          expect(allEntries(await impl.open(fs))).toEqual([entry(1, 1)]);
          await (await impl.open(fs)).persist(undefined, [entry(2, 1, "again")]);
        }
        expect(allEntries(await impl.open(fs))).toEqual([entry(1, 1), entry(2, 1, "again")]);
      });

    test("property: any sequence of persists and compactions reads back, after a crash and a reopen, as the in-memory storage has it", async () => {
      const step = fc.oneof(
        fc.record({
          kind: fc.constant("persist" as const),
          hardState: fc.option(fc.record({ term: fc.nat(50), vote: fc.nat(5), commit: fc.nat(50) }), {
            nil: undefined,
          }),
          // Entries start anywhere after the snapshot, up to one past the end: a conflict overwrites, an append extends.
          from: fc.nat(),
          terms: fc.array(fc.integer({ min: 1, max: 9 }), { maxLength: 5 }),
        }),
        fc.record({ kind: fc.constant("compact" as const), at: fc.nat() }),
      );
      await fc.assert(
        fc.asyncProperty(fc.array(step, { maxLength: 25 }), async (steps) => {
          const fs = new MemoryFileSystem();
          const durable = await impl.open(fs);
          const model = new MemoryStorage();
          for (const s of steps) {
            if (s.kind === "compact") {
              const held = model.lastIndex() - model.snapshot().index;
              if (held === 0) continue;
              const index = model.snapshot().index + 1 + (s.at % held);
              const conf = { voters: [1, 2, 3], learners: [index % 5] };
              await durable.compact(index, bytes(`state ${index}`), conf);
              model.compact(index, bytes(`state ${index}`), conf);
              continue;
            }
            const start = model.firstIndex() + (s.from % (model.lastIndex() - model.firstIndex() + 2));
            const entries = s.terms.map((term, i) =>
              entry(start + i, term, i % 2 === 0 ? null : `${start + i}/${term}`),
            );
            await durable.persist(s.hardState as HardState | undefined, entries);
            model.append(entries);
            if (s.hardState) model.setHardState(s.hardState);
          }
          fs.crash();
          const reopened = await impl.open(fs);
          expect(reopened.hardState()).toEqual(model.hardState());
          expect(reopened.snapshot()).toEqual(model.snapshot());
          expect(reopened.entries(reopened.firstIndex(), reopened.lastIndex() + 1)).toEqual(
            model.entries(model.firstIndex(), model.lastIndex() + 1),
          );
          await impl.checkFiles(fs, false);
        }),
        { numRuns: 200 },
      );
    });

    test("property: persists with conflicts, compactions, leader snapshots, unsynced hard states, reopens, crashes that tear, and a failure at any write of a compaction: each reopen reads as the in-memory storage has it", async () => {
      type Step =
        | { kind: "persist"; hardState?: HardState; from?: number; terms: number[] }
        | { kind: "unsynced"; hardState: HardState }
        | { kind: "compact"; at: number; failAt?: number }
        | { kind: "install"; at: number; term: number; failAt?: number }
        | { kind: "reopen"; crash: boolean; keep: number };
      const hardState = fc.record({ term: fc.nat(50), vote: fc.nat(5), commit: fc.nat(50) });
      // A failure at the n-th call that changes the disk (undefined: none): 0 is the sync of the
      // current segment, the last ones the cleanup.
      const failAt = fc.option(fc.nat(12), { nil: undefined, freq: 2 });
      const step: fc.Arbitrary<Step> = fc.oneof(
        {
          weight: 6,
          arbitrary: fc.record(
            {
              kind: fc.constant("persist" as const),
              hardState,
              // Most persists append (as a log grows); the others overwrite from anywhere after the snapshot.
              from: fc.option(fc.nat(), { nil: undefined, freq: 2 }),
              terms: fc.array(fc.integer({ min: 1, max: 9 }), { minLength: 1, maxLength: 4 }),
            },
            { requiredKeys: ["kind", "terms"] },
          ),
        },
        { weight: 1, arbitrary: fc.record({ kind: fc.constant("unsynced" as const), hardState }) },
        { weight: 3, arbitrary: fc.record({ kind: fc.constant("compact" as const), at: fc.nat(), failAt }) },
        {
          weight: 1,
          arbitrary: fc.record({ kind: fc.constant("install" as const), at: fc.nat(), term: fc.nat(9), failAt }),
        },
        {
          weight: 2,
          arbitrary: fc.record({
            kind: fc.constant("reopen" as const),
            crash: fc.boolean(),
            // The share of what was not synced that survives (a torn record when it is neither all nor none).
            keep: fc.nat(100),
          }),
        },
      );
      await fc.assert(
        fc.asyncProperty(fc.array(step, { maxLength: 40 }), async (steps) => {
          const memoryFs = new MemoryFileSystem();
          let failIn: number | undefined;
          const fs = interceptWrites(memoryFs, (_call, run) => {
            if (failIn !== undefined && failIn-- === 0) return Promise.reject(new Error("EIO (injected)"));
            return run();
          });
          let durable = await impl.open(fs);
          let model = new MemoryStorage();
          // The hard states a crash may go back to: the last synced one, then any written since without a sync.
          let sinceSync: HardState[] = [model.hardState()];
          /** Reopens (after a crash when asked) and checks the log against `model` or, if given, `orAfter`. */
          const reopen = async (crash: boolean, keep: number, orAfter?: MemoryStorage) => {
            await durable.close().catch(() => {});
            if (crash) memoryFs.crash(() => keep / 100);
            durable = await impl.open(fs);
            if (orAfter && durable.snapshot().index === orAfter.snapshot().index) model = orAfter;
            expect(durable.snapshot()).toEqual(model.snapshot());
            expect(durable.entries(durable.firstIndex(), durable.lastIndex() + 1)).toEqual(
              model.entries(model.firstIndex(), model.lastIndex() + 1),
            );
            if (!crash) expect(durable.hardState()).toEqual(model.hardState());
            else {
              expect(sinceSync).toContainEqual(durable.hardState());
              model.setHardState(durable.hardState());
              sinceSync = [durable.hardState()];
            }
          };
          /** Runs a compaction or snapshot install with a failure at the `failAt`-th write; a failed one reopens after a crash. */
          const replace = async (run: () => Promise<void>, after: MemoryStorage, failAt: number | undefined) => {
            failIn = failAt;
            const failed = await run().then(
              () => false,
              (error: Error) => {
                // Only a failure the injected one led to is expected (a failed removal of a stale
                // temporary file makes the next step fail): any other is the finding.
                if (failIn === undefined || failIn >= 0) throw error;
                return true;
              },
            );
            failIn = undefined;
            // A compaction syncs the current segment first (unless that is what failed).
            if (failed) await reopen(true, 0, after);
            else {
              model = after;
              sinceSync = [model.hardState()];
            }
          };
          for (const s of steps) {
            if (s.kind === "persist") {
              const start =
                s.from === undefined
                  ? model.lastIndex() + 1
                  : model.firstIndex() + (s.from % (model.lastIndex() - model.firstIndex() + 2));
              const entries = s.terms.map((term, i) =>
                entry(start + i, term, i % 2 === 0 ? null : `${start + i}/${term}`),
              );
              await durable.persist(s.hardState, entries);
              model.append(entries);
              if (s.hardState) model.setHardState(s.hardState);
              sinceSync = [model.hardState()];
            } else if (s.kind === "unsynced") {
              // Only the commit index moved, as a Ready that needs no sync has it.
              await durable.persist(s.hardState, [], false);
              model.setHardState(s.hardState);
              sinceSync.push(s.hardState);
            } else if (s.kind === "compact") {
              const held = model.lastIndex() - model.snapshot().index;
              if (held === 0) continue;
              const index = model.snapshot().index + 1 + (s.at % held);
              const conf = { voters: [1, 2, 3], learners: [index % 5] };
              const after = copyOf(model);
              after.compact(index, bytes(`state ${index}`), conf);
              await replace(() => durable.compact(index, bytes(`state ${index}`), conf), after, s.failAt);
            } else if (s.kind === "install") {
              // Behind, inside or past the entries held, as a leader's snapshot may be.
              const index = model.snapshot().index + 1 + (s.at % (model.lastIndex() - model.snapshot().index + 3));
              const snapshot = {
                index,
                term: s.term,
                data: bytes(`leader ${index}`),
                conf: { voters: [1, 2], learners: [] },
              };
              const after = copyOf(model);
              after.applySnapshot(snapshot);
              await replace(() => durable.installSnapshot(snapshot), after, s.failAt);
            } else await reopen(s.crash, s.keep);
          }
          await reopen(true, 0);
          await impl.checkFiles(
            memoryFs,
            steps.some((s) => "failAt" in s && s.failAt !== undefined),
          );
        }),
        { numRuns: 1_000 },
      );
    });

    test("a crash at any step of a compaction leaves files that replay to the same log", async () => {
      for (const fault of ["createExclusive", "rename", "sync", "syncDir", "remove"] as const) {
        const fs = new MemoryFileSystem();
        const log = await impl.open(fs);
        await log.persist({ term: 2, vote: 1, commit: 3 }, [entry(1, 1), entry(2, 1), entry(3, 2), entry(4, 2)]);
        fs.injectFault({ op: fault, code: "EIO", times: 1 });
        await log.compact(3, bytes("three"), { voters: [1], learners: [] }).catch(() => {});
        fs.crash();
        const reopened = await impl.open(fs);
        expect({ fault, state: reopened.hardState(), last: reopened.lastIndex(), term4: reopened.term(4) }).toEqual({
          fault,
          state: { term: 2, vote: 1, commit: 3 },
          last: 4,
          term4: 2,
        });
        expect(reopened.entries(4, 5)).toEqual([entry(4, 2)]);
      }
    });

    test("a Ready written without a sync, then a compaction, then a crash that tears what was not synced: the log opens", async () => {
      for (const keep of [0, 0.5, 1]) {
        const fs = new MemoryFileSystem();
        const log = await impl.open(fs);
        await log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1), entry(2, 1), entry(3, 1)]);
        // Only the commit index moved: written, not synced (mustSync false).
        await log.persist({ term: 1, vote: 1, commit: 3 }, [], false);
        await log.compact(2, bytes("two"), { voters: [1], learners: [] });
        fs.crash(() => keep);
        const reopened = await impl.open(fs);
        expect({ keep, snapshot: reopened.snapshot().index, last: reopened.lastIndex() }).toEqual({
          keep,
          snapshot: 2,
          last: 3,
        });
      }
    });

    test("persist, compact and installSnapshot called without waiting run one at a time, in order", async () => {
      const fs = new MemoryFileSystem();
      const log = await impl.open(fs);
      const release = fs.holdSyncs();
      const calls = [
        log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1), entry(2, 1), entry(3, 1)]),
        log.compact(2, new TextEncoder().encode("two"), { voters: [1], learners: [] }),
        log.persist({ term: 1, vote: 1, commit: 3 }, [entry(4, 1)]),
      ];
      // Only the first has reached the disk: its sync is held, and nothing else has started.
      await Promise.resolve();
      expect(log.lastIndex()).toBe(0);
      release();
      await Promise.all(calls);
      expect([log.snapshot().index, log.firstIndex(), log.lastIndex()]).toEqual([2, 3, 4]);
      fs.crash();
      const reopened = await impl.open(fs);
      expect(reopened.entries(reopened.firstIndex(), reopened.lastIndex() + 1).map((e) => e.index)).toEqual([3, 4]);
      expect(reopened.hardState()).toEqual({ term: 1, vote: 1, commit: 3 });
    });

    test("a snapshot from the leader replaces the log, and survives a reopen", async () => {
      const fs = new MemoryFileSystem();
      const log = await impl.open(fs);
      await log.persist({ term: 1, vote: 1, commit: 1 }, [entry(1, 1), entry(2, 1)]);
      await log.installSnapshot({
        index: 10,
        term: 3,
        data: bytes("leader's"),
        conf: { voters: [1, 2, 3], learners: [] },
      });
      await log.persist({ term: 3, vote: 0, commit: 10 }, [entry(11, 3)]);
      fs.crash();
      const reopened = await impl.open(fs);
      expect(reopened.snapshot()).toEqual({
        index: 10,
        term: 3,
        data: bytes("leader's"),
        conf: { voters: [1, 2, 3], learners: [] },
      });
      expect([reopened.firstIndex(), reopened.lastIndex(), reopened.term(10)]).toEqual([11, 11, 3]);
      expect(reopened.hardState()).toEqual({ term: 3, vote: 0, commit: 10 });
    });
  });
}

describe("DurableRaftLog", () => {
  test("a torn last record is cut off and said so; what came before is kept", async () => {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, DIR);
    await log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)]);
    const whole = fs.bytes(FILE);
    await log.persist(undefined, [entry(2, 1, "y".repeat(100))]);
    const longer = fs.bytes(FILE);
    fs.overwrite(FILE, longer.subarray(0, whole.byteLength + 40));
    const lines: string[] = [];
    const reopened = await DurableRaftLog.open(fs, DIR, (line) => lines.push(line));
    expect(allEntries(reopened)).toEqual([entry(1, 1)]);
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain("cut 40 bytes of a torn last record");
    // And the file itself was cut back, so the next append follows good data.
    await reopened.persist(undefined, [entry(2, 1, "z")]);
    expect(allEntries(await DurableRaftLog.open(fs, DIR))).toEqual([entry(1, 1), entry(2, 1, "z")]);
  });

  test("a flipped byte before the end stops the open, naming the file and the offset", async () => {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, DIR);
    await log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1)]);
    await log.persist(undefined, [entry(2, 1)]);
    const bytes = fs.bytes(FILE).slice();
    const headerBytes = 12 + 6 + 1 + 8;
    bytes[headerBytes + 20] = bytes[headerBytes + 20]! ^ 0xff; // inside the first entries record
    fs.overwrite(FILE, bytes);
    expect(await rejectionMessage(DurableRaftLog.open(fs, DIR))).toMatch(
      `${FILE} is damaged at byte offset ${headerBytes}`,
    );
  });

  test("a compaction leaves the entries it keeps where they are: its new segment holds the hard state only", async () => {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, DIR);
    const big = "x".repeat(10_000);
    const entries = Array.from({ length: 40 }, (_, i) => entry(i + 1, 1, `${i + 1}${big}`));
    await log.persist({ term: 1, vote: 1, commit: 40 }, entries);
    const before = await fs.list(DIR);
    await log.compact(10, bytes("state 10"), { voters: [1], learners: [] });
    const added = (await fs.list(DIR)).filter(
      (name) => !before.includes(name) && SEGMENT.parseFileName(name) !== undefined,
    );
    expect(added.length).toBe(1);
    // A header and a hard state record, not 30 entries of 10 KB.
    expect((await fs.readFile(`${DIR}/${added[0]}`)).byteLength).toBeLessThan(200);
    fs.crash();
    const reopened = await DurableRaftLog.open(fs, DIR);
    expect(reopened.firstIndex()).toBe(11);
    expect(reopened.entries(11, 41)).toEqual(entries.slice(10));
  });

  test("a crash at any step of installing a leader's snapshot leaves the log as before or as after, never a mix", async () => {
    const snapshot = {
      index: 10,
      term: 3,
      data: new TextEncoder().encode("leader's"),
      conf: { voters: [1, 2, 3], learners: [] },
    };
    // Every I/O step of installSnapshot, in order: the new segment, the snapshot file, the cleanup.
    const steps = [
      { op: "sync", pathIncludes: ".raftlog" },
      { op: "truncate", pathIncludes: ".raftlog" },
      { op: "append", pathIncludes: ".raftlog" },
      { op: "append", pathIncludes: ".raftlog", after: 1 },
      { op: "sync", pathIncludes: ".raftlog", after: 1 },
      { op: "syncDir" },
      { op: "createExclusive", pathIncludes: ".raftsnap" },
      { op: "sync", pathIncludes: ".raftsnap" },
      { op: "rename", pathIncludes: ".raftsnap" },
      { op: "syncDir", after: 1 },
      { op: "remove", pathIncludes: ".raftlog" },
      { op: "syncDir", after: 2 },
    ] as const;
    const outcomes: string[] = [];
    for (const step of steps) {
      const fs = new MemoryFileSystem();
      const log = await DurableRaftLog.open(fs, DIR);
      // Entries 1-12, of which 10 has another term than the snapshot's: the leader's snapshot replaces
      // them all, 11 and 12 included (a mix would keep them after it).
      const held = Array.from({ length: 12 }, (_, i) => entry(i + 1, i < 2 ? 1 : 2));
      await log.persist({ term: 3, vote: 2, commit: 2 }, held.slice(0, 6));
      await log.persist(undefined, held.slice(6));
      fs.injectFault({ code: "EIO", times: 1, ...step });
      const failed = await log.installSnapshot(snapshot).then(
        () => false,
        () => true,
      );
      if (failed) {
        // The object refuses to go on from a state only a reopen can read.
        expect(await rejectionMessage(log.persist(undefined, [entry(5, 2)]))).toMatch("must be reopened");
      }
      fs.crash();
      const reopened = await DurableRaftLog.open(fs, DIR);
      const state = {
        snapshot: reopened.snapshot().index,
        first: reopened.firstIndex(),
        last: reopened.lastIndex(),
        hardState: reopened.hardState(),
      };
      const before = { snapshot: 0, first: 1, last: 12, hardState: { term: 3, vote: 2, commit: 2 } };
      const after = { snapshot: 10, first: 11, last: 10, hardState: { term: 3, vote: 2, commit: 2 } };
      const which = JSON.stringify(state) === JSON.stringify(before) ? "before" : "after";
      expect({ step, state }).toEqual({ step, state: which === "before" ? before : after });
      if (which === "before") expect(allEntries(reopened)).toEqual(held);
      else expect(reopened.snapshot()).toEqual(snapshot);
      outcomes.push(`${step.op}${"after" in step ? `#${step.after + 1}` : ""}:${failed ? "failed" : "ok"}:${which}`);
    }
    // Up to the rename the old log stands; from it on, the snapshot does (cleanup failures included).
    expect(outcomes).toEqual([
      "sync:failed:before",
      "truncate:failed:before",
      "append:failed:before",
      "append#2:failed:before",
      "sync#2:failed:before",
      "syncDir:failed:before",
      "createExclusive:failed:before",
      "sync:failed:before",
      "rename:failed:before",
      "syncDir#2:failed:after",
      "remove:ok:after",
      "syncDir#3:ok:after",
    ]);
  });
});

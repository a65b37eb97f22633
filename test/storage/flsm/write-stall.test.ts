import { describe, expect, test } from "bun:test";
import { HomeKvError } from "../../../src/errors.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import {
  type CompactHook,
  type FlsmEngine,
  type FlsmEngineOptions,
  type FlushedLog,
  FROZEN_MEMTABLES_STOP,
  openFlsmEngine,
} from "../../../src/storage/flsm/disk-engine.ts";
import type { CompactionResult } from "../../../src/storage/flsm/levels/compaction.ts";
import { type Backlog, WriteGate } from "../../../src/storage/flsm/write-gate.ts";
import { realTimers } from "../../../src/timers.ts";
import { text } from "../../helpers/bytes.ts";
import { put } from "../../helpers/storage.ts";
import { waitFor } from "../../helpers/wait.ts";

/** A promise and what settles it, for work a test holds back and lets go. */
function deferred<T = void>() {
  let resolve!: (value: T) => void;
  let reject!: (error: unknown) => void;
  const promise = new Promise<T>((yes, no) => {
    resolve = yes;
    reject = no;
  });
  // A failure may come before anyone waits for it (the flush has not reached the log yet).
  promise.catch(() => {});
  return { promise, resolve, reject };
}

/** Whether `promise` has settled once every queued callback has run (it would not settle later by itself). */
async function settled(promise: Promise<unknown>): Promise<"resolved" | "rejected" | "pending"> {
  let state: "resolved" | "rejected" | "pending" = "pending";
  promise.then(
    () => (state = "resolved"),
    () => (state = "rejected"),
  );
  for (let turn = 0; turn < 10; turn++) await new Promise((resolve) => setImmediate(resolve));
  return state;
}

describe("WriteGate", () => {
  test("admits at once without a backlog, holds writes through a stop and lets them go when it ends", async () => {
    let backlog: Backlog = { stall: "none" };
    const gate = new WriteGate(() => backlog);
    expect(gate.admit()).toBeUndefined();
    backlog = { stall: "stop" };
    const first = gate.admit()!;
    const second = gate.admit()!;
    gate.changed(); // still stopped
    expect(await settled(first)).toBe("pending");
    backlog = { stall: "none" };
    gate.changed();
    expect(await settled(first)).toBe("resolved");
    expect(await settled(second)).toBe("resolved");
    expect(gate.stats().stoppedGroups).toBe(2);
    expect(gate.admit()).toBeUndefined();
  });

  test("a slowdown is one short pause shared by the writes that arrive during it", async () => {
    const gate = new WriteGate(() => ({ stall: "slowdown" }));
    const a = gate.admit()!;
    const b = gate.admit()!;
    expect(a).toBe(b);
    await a;
    expect(gate.admit()).not.toBe(a);
    expect(gate.stats().slowedGroups).toBe(3);
  });

  test("a stop caused by a failure refuses writes with E_DISK, those waiting included; closing refuses what a backlog holds, and no more", async () => {
    let backlog: Backlog = { stall: "stop" };
    const gate = new WriteGate(() => backlog);
    const waiting = gate.admit()!;
    backlog = { stall: "stop", failure: "ENOSPC: no space left" };
    gate.changed();
    const error = await waiting.catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(HomeKvError);
    expect((error as HomeKvError).code).toBe("E_DISK");
    expect((error as Error).message).toContain("ENOSPC: no space left");
    expect(await settled(gate.admit()!)).toBe("rejected");
    backlog = { stall: "stop" };
    const held = gate.admit()!;
    gate.close(new HomeKvError("E_UNAVAILABLE", "closing"));
    expect(await settled(held)).toBe("rejected");
    expect(await settled(gate.admit()!)).toBe("rejected");
    // A closing WAL still writes what it queued while nothing holds writes back.
    backlog = { stall: "none" };
    expect(gate.admit()).toBeUndefined();
  });
});

/**
 * A WAL stand-in whose syncs the test holds: a flush waits for the log before the manifest names
 * its table. `fail` makes every sync fail until `release` makes them all succeed.
 */
function heldLog() {
  let hold = deferred();
  const log: FlushedLog = {
    syncWritten: () => hold.promise,
    dropCovered: async () => {},
  };
  return {
    log,
    release() {
      hold.resolve();
      hold = deferred();
      hold.resolve();
    },
    fail(error: Error) {
      hold.reject(error);
    },
  };
}

let revision = 0;
/** One command of one 100-byte value: with 1-byte memtables every command freezes its memtable. */
function write(engine: FlsmEngine): void {
  revision++;
  engine.store.apply({ revision, ops: [put(`k${revision % 7}`, "v".repeat(100))] });
}

/** An engine on a fresh in-memory disk whose every command freezes its memtable. */
function openEngine(options: Partial<FlsmEngineOptions> = {}): Promise<FlsmEngine> {
  revision = 0;
  return openFlsmEngine({ fs: new MemoryFileSystem(), dir: "/d/flsm", memtableBytes: 1, storeOptions: {}, ...options });
}

/** Level 0 compacts at 1 table, slows writes at 2 and stops them at 3. */
const LEVEL0_STALL_TUNING = {
  level0CompactionTables: 1,
  level0SlowdownTables: 2,
  level0StopTables: 3,
  firstLevelGuardBytes: 1 << 30,
  guardBytesGrowth: 2,
  guardRunsMax: 4,
};

/** A compact hook whose jobs wait for the test; `finishCompaction` ends the oldest (its inputs leave level 0). */
function heldCompactions() {
  const compactions: { release: (result: CompactionResult) => void; job: Parameters<CompactHook>[0] }[] = [];
  const compact: CompactHook = (request) =>
    new Promise((resolve) => compactions.push({ release: resolve, job: request }));
  // The test reads nothing back: the inputs just leave level 0.
  const finishCompaction = () => {
    const { release, job } = compactions.shift()!;
    release({
      change: { removed: job.job.inputs.map(({ number }) => ({ level: 0, number })), guardsAdded: [], added: [] },
      bytesRead: 0,
      bytesWritten: 0,
      entriesRead: 0,
      entriesWritten: 0,
    });
  };
  return { compact, compactions, finishCompaction };
}

describe("the FLSM engine's write stall", () => {
  test(`writes stop while ${FROZEN_MEMTABLES_STOP} memtables wait for their flush, and go on once one is flushed`, async () => {
    const wal = heldLog();
    const engine = await openEngine({ log: Promise.resolve(wal.log) });
    for (let i = 0; i < FROZEN_MEMTABLES_STOP - 1; i++) write(engine);
    expect(engine.admitWrite()).toBeUndefined();
    write(engine);
    expect(engine.stats().memtable.frozen).toBe(FROZEN_MEMTABLES_STOP);
    const stopped = engine.admitWrite()!;
    expect(engine.stats().backlog).toEqual({ stall: "stop" });
    expect(await settled(stopped)).toBe("pending");
    wal.release();
    expect(await settled(stopped)).toBe("resolved");
    await engine.store.flushAll();
    expect(engine.admitWrite()).toBeUndefined();
    expect(engine.stats().writeGate.stoppedGroups).toBe(1);
    await engine.close();
  });

  test("a flush that fails while writes are stopped refuses them (E_DISK, naming it) and is retried; a success admits again", async () => {
    const wal = heldLog();
    const lines: string[] = [];
    const engine = await openEngine({ log: Promise.resolve(wal.log), report: (line) => lines.push(line) });
    for (let i = 0; i < FROZEN_MEMTABLES_STOP; i++) write(engine);
    const stopped = engine.admitWrite()!;
    wal.fail(new Error("EIO: the disk went away"));
    const error = (await stopped.catch((caught: unknown) => caught)) as HomeKvError;
    expect(error.code).toBe("E_DISK");
    expect(error.message).toContain("EIO: the disk went away");
    expect(lines.some((line) => line.includes("retrying in a second"))).toBe(true);
    // The retry (a second later) finds the log well again: the backlog drains without another write.
    wal.release();
    await waitFor(() => engine.stats().memtable.frozen === 0, { what: "the retried flushes to drain the backlog" });
    expect(engine.admitWrite()).toBeUndefined();
    expect(engine.stats().memtable.flushFailure).toBeUndefined();
    await engine.close();
  });

  test("level 0 at its stop trigger stops writes until a compaction empties it; at its slowdown trigger they pause", async () => {
    const { compact, compactions, finishCompaction } = heldCompactions();
    const engine = await openEngine({ compact, tuning: { compaction: LEVEL0_STALL_TUNING } });
    write(engine);
    await engine.store.flushAll();
    expect(engine.admitWrite()).toBeUndefined();
    write(engine);
    await engine.store.flushAll();
    expect(engine.stats().writeStall).toBe("slowdown");
    const slowed = engine.admitWrite()!;
    await slowed;
    write(engine);
    await engine.store.flushAll();
    expect(engine.stats().writeStall).toBe("stop");
    const stopped = engine.admitWrite()!;
    expect(await settled(stopped)).toBe("pending");
    // The compaction picked at the first flush takes level 0's first table away: 2 left.
    finishCompaction();
    expect(await settled(stopped)).toBe("resolved");
    expect(engine.stats().writeGate).toMatchObject({ stoppedGroups: 1, slowedGroups: 1 });
    const closed = engine.close();
    while (compactions.length > 0 || (await settled(closed)) === "pending") finishCompaction();
    await closed;
  });
});

describe("an FLSM engine that opens with level 0 at its stop trigger", () => {
  test("compacts at once, with no flush to start it, and then admits the writes it stopped", async () => {
    const fs = new MemoryFileSystem();
    // A run whose compactions never ran (none configured here; failing ones leave the same level 0).
    const before = await openEngine({ fs, tuning: { compaction: LEVEL0_STALL_TUNING } });
    for (let i = 0; i < LEVEL0_STALL_TUNING.level0StopTables; i++) {
      write(before);
      await before.store.flushAll();
    }
    await before.close();
    const { compact, compactions, finishCompaction } = heldCompactions();
    const engine = await openEngine({ fs, compact, tuning: { compaction: LEVEL0_STALL_TUNING } });
    expect(engine.stats().writeStall).toBe("stop");
    const stopped = engine.admitWrite()!;
    await waitFor(() => compactions.length === 1, { what: "the engine to compact the level 0 it opened with" });
    finishCompaction();
    expect(await settled(stopped)).toBe("resolved");
    await engine.close();
  });
});

describe("a durable database on the FLSM engine", () => {
  test("refuses writes (E_DISK) while its flushes fail and its memtables are full, applies none of them, and takes writes again once the disk recovers", async () => {
    const fs = new MemoryFileSystem();
    const lines: string[] = [];
    const db = await openDurableDatabase({
      fs,
      dir: "/db",
      fsync: "never",
      log: (line) => lines.push(line),
      // No compaction: the test is about flushes (level 0 stalls only an engine that compacts).
      engine: { kind: "flsm", memtableBytes: 1, compact: () => Promise.reject(new Error("not in this test")) },
    });
    fs.injectFault({ op: "append", code: "ENOSPC", pathIncludes: ".sst" });
    await db.write([put("a", "1")]);
    await db.write([put("b", "2")]);
    const error = (await db.write([put("c", "3")]).catch((caught: unknown) => caught)) as HomeKvError;
    expect(error).toBeInstanceOf(HomeKvError);
    expect(error.code).toBe("E_DISK");
    expect(error.message).toContain("ENOSPC");
    expect(db.revision).toBe(2);
    expect(db.read(["c"]).records[0]?.value).toBeUndefined();
    fs.clearFaults();
    await waitFor(() => db.stats().flsm?.memtable.frozen === 0, { what: "the retried flushes to go through" });
    await db.write([put("c", "3")]);
    expect(db.read(["a", "b", "c"]).records.map((record) => text(record.value))).toEqual(["1", "2", "3"]);
    await db.close();
  });

  test("holds no more stopped writes than its WAL would hold pending: the rest are refused, the held ones applied", async () => {
    const fs = new MemoryFileSystem();
    const db = await openDurableDatabase({
      fs,
      dir: "/db",
      fsync: "never",
      walPendingMax: 2,
      engine: { kind: "flsm", memtableBytes: 1, compact: () => Promise.reject(new Error("not in this test")) },
    });
    const release = fs.holdSyncs(); // the first flush waits for its table's sync
    await db.write([put("a", "1")]);
    await db.write([put("b", "2")]);
    expect(db.stats().flsm?.backlog).toEqual({ stall: "stop" });
    const writes = ["c", "d", "e"].map((key) =>
      db.write([put(key, key)]).then(
        () => "applied",
        (error: HomeKvError) => error.code,
      ),
    );
    expect(await writes[2]).toBe("E_UNAVAILABLE");
    release();
    expect(await Promise.all(writes)).toEqual(["applied", "applied", "E_UNAVAILABLE"]);
    await db.close();
  });

  test("a close writes what the WAL queued while nothing holds writes back, as the memory engine does", async () => {
    const fs = new MemoryFileSystem();
    const db = await openDurableDatabase({
      fs,
      dir: "/db",
      fsync: "always",
      log: () => {},
      engine: { kind: "flsm", compact: () => Promise.reject(new Error("not in this test")) },
    });
    const release = fs.holdSyncs();
    const first = db.write([put("a", "1")]);
    await waitFor(() => fs.syncsWaiting > 0, { what: "the first write's sync to be under way" });
    const second = db.write([put("b", "2")]); // queued behind it
    const closed = db.close();
    release();
    expect((await Promise.all([first, second])).map((result) => result.revision)).toEqual([1, 2]);
    await closed;
  });

  test("closes its engine even when the last flush fails: no retry is left armed to write after the lock is released", async () => {
    const fs = new MemoryFileSystem();
    const db = await openDurableDatabase({
      fs,
      dir: "/db",
      fsync: "never",
      log: () => {},
      engine: { kind: "flsm", compact: () => Promise.reject(new Error("not in this test")) },
    });
    await db.write([put("a", "1")]);
    fs.injectFault({ op: "append", code: "ENOSPC", pathIncludes: ".sst" });
    // Counts the engine's timers (its retries) armed and neither fired nor cancelled; they still run.
    const { after } = realTimers;
    let armed = 0;
    realTimers.after = (delayMs, fire) => {
      armed++;
      let live = true;
      const cancel = after(delayMs, () => {
        if (live) armed--;
        live = false;
        fire();
      });
      return () => {
        if (live) armed--;
        live = false;
        cancel();
      };
    };
    try {
      const error = (await db.close().catch((caught: unknown) => caught)) as Error;
      expect(error.message).toContain("ENOSPC");
      expect(armed).toBe(0);
    } finally {
      realTimers.after = after;
    }
    // The WAL kept the write: a new start has it.
    fs.clearFaults();
    const reopened = await openDurableDatabase({ fs, dir: "/db", fsync: "never", engine: { kind: "flsm" } });
    expect(text(reopened.read(["a"]).records[0]?.value)).toBe("1");
    await reopened.close();
  });
});

/**
 * Backups of the FLSM engine (flsm/backup-tables.ts, backup/backup-dir.ts): the manifest as it
 * stands plus a hard link to each table it names, opened as a data directory of its own. On real
 * files with the server's Workers (flushes and compactions while the backup runs), then on the
 * in-memory file system where the test holds a link while a compaction removes its table, and
 * where a step fails.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FileSystem } from "../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import type { BackupInfo } from "../../../src/storage/backup/backup-dir.ts";
import type { Database } from "../../../src/storage/database.ts";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import type { FlsmEngineSettings } from "../../../src/storage/engine.ts";
import { runCompactionJob } from "../../../src/storage/flsm/compaction/run-compaction-job.ts";
import type { CompactHook } from "../../../src/storage/flsm/disk-engine.ts";
import { expectNothingLeft, expectRestored, keyNames, recordingDirs, writeLoad } from "../../helpers/backup.ts";
import { interceptWrites } from "../../helpers/storage.ts";
import { waitFor } from "../../helpers/wait.ts";

const TUNING: FlsmEngineSettings["tuning"] = {
  table: { blockBytes: 256, restartInterval: 4 },
  // Dense guards on three levels: compactions reach the bottom within a few hundred commands.
  guards: { levelCount: 3, firstLevelBits: 2, bitsStep: 1 },
  compaction: {
    level0CompactionTables: 2,
    level0SlowdownTables: 8,
    level0StopTables: 12,
    firstLevelGuardBytes: 1_500,
    guardBytesGrowth: 2,
    guardRunsMax: 2,
  },
};
const HISTORY = { historyRevisions: 100_000 };
const KEYS = keyNames("k", 150);

const scratch = mkdtempSync(join(tmpdir(), "homekv-flsm-backup-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** The tables' levels in a data directory's engine (stats), deepest level holding one. */
function deepestLevel(db: Database): number {
  const levels = db.stats().flsm!.levels.filter((level) => level.tables > 0);
  return Math.max(-1, ...levels.map((level) => level.level));
}

const tablesIn = (dir: string) => readdirSync(join(dir, "flsm")).filter((name) => name.endsWith(".sst"));

describe("a backup of the FLSM engine on real files", () => {
  const open = (dir: string) =>
    openDurableDatabase({
      ...HISTORY,
      dir,
      engine: { kind: "flsm", memtableBytes: 3_000, tuning: TUNING },
    });

  test("taken during writes, flushes and compactions: the tables hard-linked, every key as it was at the backup's revision", async () => {
    const dataDir = join(scratch, "data");
    const db = await open(dataDir);
    try {
      await writeLoad(db, KEYS, { commands: 300, seed: 1 });
      await waitFor(() => db.stats().flsm!.compactions > 0 && deepestLevel(db) >= 1, {
        what: "compactions to reach level 1",
        detail: () => JSON.stringify(db.stats().flsm),
      });
      const before = db.revision;
      // The backup runs while writers go on (the backup flushes, they fill the next memtable).
      const target = join(scratch, "backup");
      const [backup] = await Promise.all([db.backup(target), writeLoad(db, KEYS, { commands: 100, seed: 2 })]);
      expect(backup.revision).toBeGreaterThanOrEqual(before);
      expect(backup.linkedBytes).toBeGreaterThan(0);
      expect(backup.bytes).toBeGreaterThan(backup.linkedBytes);
      expect(readFileSync(join(target, "ENGINE"), "utf8")).toBe("flsm\n");
      expect(readdirSync(join(target, "wal"))).toEqual([]);
      expect(readdirSync(target).sort()).toEqual(["ENGINE", "flsm", "wal"]);
      expect(readdirSync(scratch).sort()).toEqual(["backup", "data"]);
      // Each table is a second name of the server's own file while the server still has it.
      const tables = tablesIn(target);
      expect(tables.length).toBeGreaterThan(1);
      for (const name of tables) {
        const original = join(dataDir, "flsm", name);
        if (existsSync(original)) expect(statSync(join(target, "flsm", name)).ino).toBe(statSync(original).ino);
      }

      await writeLoad(db, KEYS, { commands: 200, seed: 3 });
      await expectRestored(db, open(target), backup.revision, KEYS, (restored) => {
        expect(restored.stats().keys).toBe(backup.keys);
        expect(deepestLevel(restored)).toBeGreaterThanOrEqual(1);
      });
    } finally {
      await db.close();
    }
  }, 30_000);

  test("to another file system the tables are copied (EXDEV), and the backup reads the same", async () => {
    const shm = "/dev/shm";
    if (!existsSync(shm) || statSync(shm).dev === statSync(scratch).dev) return;
    const other = mkdtempSync(join(shm, "homekv-flsm-backup-"));
    const db = await open(join(scratch, "data-exdev"));
    try {
      await writeLoad(db, KEYS, { commands: 150, seed: 4 });
      const backup = await db.backup(join(other, "backup"));
      expect(backup.linkedBytes).toBe(0);
      expect(tablesIn(join(other, "backup")).length).toBeGreaterThan(0);
      await expectRestored(db, open(join(other, "backup")), backup.revision, KEYS);
    } finally {
      await db.close();
      rmSync(other, { recursive: true, force: true });
    }
  }, 30_000);
});

/** A promise the test resolves when it lets what waits on it go. */
function held() {
  const { promise, resolve } = Promise.withResolvers<void>();
  return { promise, release: () => resolve() };
}

describe("a backup of the FLSM engine on the in-memory file system", () => {
  const DATA = "/data/homekv";

  /** Compactions in process, each waiting for `gate` (when given) before it runs. */
  function compactions(fs: FileSystem, gate?: Promise<void>): CompactHook {
    return async (request) => {
      await gate;
      return runCompactionJob({
        fs,
        dir: request.dir,
        job: request.job,
        levels: request.levels,
        floor: request.floor,
        tuning: { maxTableBytes: 2_000, guards: TUNING!.guards!, table: TUNING!.table },
        allocateNumber: request.allocateFileNumber,
      });
    };
  }

  const openOn = (fs: FileSystem, dir: string, compact: CompactHook) =>
    openDurableDatabase({
      ...HISTORY,
      fs,
      dir,
      isAlive: () => false,
      engine: { kind: "flsm", memtableBytes: 3_000, tuning: TUNING, compact },
    });

  test("a compaction that removes the tables a backup is linking leaves them until the backup is done", async () => {
    const memory = new MemoryFileSystem();
    const compactionGate = held();
    const linkGate = held();
    let linksStarted = 0;
    const fs = interceptWrites(memory, async (call, run) => {
      if (call === "link" && linksStarted++ === 0) await linkGate.promise;
      return run();
    });
    const db = await openOn(fs, DATA, compactions(memory, compactionGate.promise));
    try {
      // A few tables at level 0, well below its stop trigger: the held compaction stops no write.
      await writeLoad(db, KEYS, { commands: 12, seed: 5 });
      await db.checkpoint(); // every memtable flushed: level 0 holds tables, a compaction waits at the gate
      await waitFor(() => db.stats().flsm!.compacting, { what: "a compaction to wait for its gate" });
      const level0 = (await memory.list(`${DATA}/flsm`)).filter((name) => name.endsWith(".sst")).sort();
      expect(level0.length).toBeGreaterThanOrEqual(2);

      await memory.mkdirp("/backups");
      const backingUp = db.backup("/backups/one");
      await waitFor(() => linksStarted === 1, { what: "the backup's first link" });
      // The compaction runs, logs its edit and deletes its inputs, which the backup has pinned.
      compactionGate.release();
      await waitFor(() => db.stats().flsm!.compactions >= 1, { what: "the compaction to be installed" });
      for (const name of level0) expect(await memory.exists(`${DATA}/flsm/${name}`)).toBe(true);
      linkGate.release();
      const backup = await backingUp;
      expect(backup.linkedBytes).toBe(
        backup.bytes - (await memory.readFile("/backups/one/flsm/MANIFEST-1")).byteLength,
      );
      // Released: the compaction's inputs go now.
      for (const name of level0) expect(await memory.exists(`${DATA}/flsm/${name}`)).toBe(false);
      expect((await memory.list("/backups/one/flsm")).filter((name) => name.endsWith(".sst")).sort()).toEqual(level0);

      await writeLoad(db, KEYS, { commands: 100, seed: 6 });
      await expectRestored(db, openOn(memory, "/backups/one", compactions(memory)), backup.revision, KEYS);
    } finally {
      compactionGate.release();
      linkGate.release();
      await db.close();
    }
  });

  test("a backup captures a durable state: a compaction's edit being written when it asks, then failing, leaves none of its tables in the backup", async () => {
    const memory = new MemoryFileSystem();
    const compactionGate = held();
    const linkGate = held();
    let holdAppend: ReturnType<typeof held> | undefined;
    let appendsHeld = 0;
    let backupAsked = false;
    const intercepted = interceptWrites(memory, async (call, run) => {
      // After the checkpoint no write comes: the next append is the compaction's manifest edit.
      if (call === "append" && holdAppend) {
        const hold = holdAppend;
        holdAppend = undefined;
        appendsHeld++;
        await hold.promise;
      }
      if (call === "link") await linkGate.promise;
      return run();
    });
    const fs: FileSystem = {
      ...intercepted,
      mkdirp(dir) {
        // The backup's last step before it asks for the manifest's state; the steps between are all in memory.
        if (dir.startsWith("/backups/one.tmp-") && dir.endsWith("/wal")) backupAsked = true;
        return memory.mkdirp(dir);
      },
    };
    const edit = held();
    const db = await openOn(fs, DATA, compactions(memory, compactionGate.promise));
    try {
      await writeLoad(db, KEYS, { commands: 12, seed: 5 });
      await db.checkpoint();
      await waitFor(() => db.stats().flsm!.compacting, { what: "a compaction to wait for its gate" });
      holdAppend = edit;
      compactionGate.release();
      await waitFor(() => appendsHeld === 1, { what: "the compaction's edit held in its append" });
      await memory.mkdirp("/backups");
      const backingUp = db.backup("/backups/one").catch((error: unknown) => error);
      await waitFor(() => backupAsked, { what: "the backup to ask for the manifest's state" });
      // The edit fails: undone, and the compaction's outputs deleted. A state read outside the
      // manifest's queue would have named them, and their links would now fail (ENOENT).
      memory.injectFault({ op: "append", code: "ENOSPC", pathIncludes: `${DATA}/flsm/MANIFEST-`, times: 1 });
      edit.release();
      await waitFor(() => db.stats().flsm!.compactionFailures >= 1, { what: "the compaction to fail" });
      linkGate.release();
      const backup = await backingUp;
      if (backup instanceof Error) throw backup;
      await expectRestored(
        db,
        openOn(memory, "/backups/one", compactions(memory)),
        (backup as BackupInfo).revision,
        KEYS,
      );
    } finally {
      compactionGate.release();
      edit.release();
      linkGate.release();
      await db.close();
    }
  });

  test("tables linked across file systems are copied, and the copies read the same", async () => {
    const fs = new MemoryFileSystem();
    const db = await openOn(fs, DATA, compactions(fs));
    try {
      await writeLoad(db, KEYS, { commands: 150, seed: 7 });
      await fs.mkdirp("/backups");
      fs.injectFault({ op: "link", code: "EXDEV" });
      const backup = await db.backup("/backups/copied");
      expect(backup.linkedBytes).toBe(0);
      const tables = (await fs.list("/backups/copied/flsm")).filter((name) => name.endsWith(".sst"));
      expect(tables.length).toBeGreaterThan(0);
      // Those a compaction has not removed since.
      for (const name of tables)
        if (await fs.exists(`${DATA}/flsm/${name}`))
          expect(fs.bytes(`/backups/copied/flsm/${name}`)).toEqual(fs.bytes(`${DATA}/flsm/${name}`));
      await expectRestored(db, openOn(fs, "/backups/copied", compactions(fs)), backup.revision, KEYS, (restored) =>
        expect(deepestLevel(restored)).toBeGreaterThanOrEqual(1),
      );
    } finally {
      await db.close();
    }
  });

  test.each([
    ["a link fails", { op: "link", code: "EIO" }],
    ["a write into it fails", { op: "append", code: "ENOSPC", pathIncludes: "/backups/failed.tmp-" }],
    ["its directory cannot be synced", { op: "syncDir", code: "EIO", pathIncludes: "/backups/failed.tmp-" }],
    // After ENGINE's and CURRENT's own renames inside it.
    ["the rename into place fails", { op: "rename", code: "EIO", pathIncludes: "/backups/failed.tmp-", after: 2 }],
  ] as const)(
    "when %s, no backup is left and no temporary, the server goes on, and the next backup works",
    async (_, fault) => {
      const memory = new MemoryFileSystem();
      const { fs, made } = recordingDirs(memory);
      const db = await openOn(fs, DATA, compactions(memory));
      try {
        await writeLoad(db, KEYS, { commands: 100, seed: 8 });
        await memory.mkdirp("/backups");
        memory.injectFault({ ...fault, times: 1 });
        const error = await db.backup("/backups/failed").catch((caught: unknown) => caught);
        expect(error).toMatchObject({ code: "E_DISK" });
        expect((error as Error).message).toContain("the backup to /backups/failed failed");
        await expectNothingLeft(memory, made, "/backups/failed");
        // Every table of the server is still there and read.
        const { revision } = await db.write([{ key: "after-failure", value: new Uint8Array([1]) }]);
        const backup = await db.backup("/backups/failed");
        expect(backup.revision).toBeGreaterThanOrEqual(revision);
        await expectRestored(db, openOn(memory, "/backups/failed", compactions(memory)), backup.revision, [
          ...KEYS,
          "after-failure",
        ]);
      } finally {
        await db.close();
      }
    },
  );
});

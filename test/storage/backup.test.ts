/**
 * Backups of a durable database (backup/backup-dir.ts) with the memory engine: a checkpoint written
 * into a new data directory, which opens like any other at the backup's revision. And what every
 * backup refuses, and leaves behind when it fails (nothing). The FLSM engine's own part is tested
 * in test/storage/flsm/backup.test.ts.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FileSystem } from "../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { createDatabase } from "../../src/storage/database.ts";
import { openDurableDatabase } from "../../src/storage/durable-database.ts";
import { startReplicatedLocalGroup } from "../cluster/replication/local-group.ts";
import { expectNothingLeft, expectRestored, keyNames, recordingDirs, writeLoad } from "../helpers/backup.ts";
import { rejection } from "../helpers/rejection.ts";
import { waitFor } from "../helpers/wait.ts";

const HISTORY = { historyRevisions: 100_000 };
const KEYS = keyNames("k", 150);
const scratch = mkdtempSync(join(tmpdir(), "homekv-backup-"));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe("a backup of the memory engine", () => {
  test("taken during writes on real files: one checkpoint in a new data directory, every key as it was at its revision", async () => {
    const dataDir = join(scratch, "data");
    // Checkpoints of the server's own too, while the backup runs: each is a snapshot of its own.
    const db = await openDurableDatabase({ ...HISTORY, dir: dataDir, checkpointWalBytes: 20_000 });
    try {
      await writeLoad(db, KEYS, { commands: 300, seed: 1 });
      const before = db.revision;
      const target = join(scratch, "backup");
      const [backup] = await Promise.all([db.backup(target), writeLoad(db, KEYS, { commands: 100, seed: 2 })]);
      expect(backup.revision).toBeGreaterThanOrEqual(before);
      expect(backup).toMatchObject({
        linkedBytes: 0,
        keys: db.read(KEYS, backup.revision).records.filter((r) => r.value).length,
      });
      expect(backup.durationMs).toBeGreaterThan(0);
      expect(readdirSync(target).sort()).toEqual(["ENGINE", "checkpoints", "wal"]);
      expect(readFileSync(join(target, "ENGINE"), "utf8")).toBe("memory\n");
      expect(readdirSync(join(target, "wal"))).toEqual([]);
      expect(readdirSync(join(target, "checkpoints"))).toEqual([`${String(backup.revision).padStart(20, "0")}.ckpt`]);
      expect(readdirSync(scratch).sort()).toEqual(["backup", "data"]);

      await writeLoad(db, KEYS, { commands: 100, seed: 3 });
      await expectRestored(db, openDurableDatabase({ ...HISTORY, dir: target }), backup.revision, KEYS);
    } finally {
      await db.close();
    }
  }, 30_000);
});

describe("what a backup refuses", () => {
  const DATA = "/data/homekv";
  const open = (fs: FileSystem) => openDurableDatabase({ fs, dir: DATA, isAlive: () => false });

  test("a path that is not absolute, one inside the data directory, an existing directory, a missing parent", async () => {
    const fs = new MemoryFileSystem();
    const db = await open(fs);
    try {
      await db.write([{ key: "k", value: new Uint8Array([1]) }]);
      await fs.mkdirp("/backups/taken");
      const refusal = (dir: string) => db.backup(dir).catch((error: unknown) => error);
      expect(await refusal("backups/relative")).toMatchObject({
        code: "E_INVALID",
        message:
          'the backup directory "backups/relative" is not an absolute path: it is a path on the server\'s machine',
      });
      expect(await refusal("")).toMatchObject({ code: "E_INVALID" });
      expect(await refusal(`${DATA}/../homekv/inside`)).toMatchObject({
        code: "E_INVALID",
        message: `cannot back up to ${DATA}/inside: it is inside the server's data directory ${DATA}; name a directory elsewhere`,
      });
      expect(await refusal("/backups/taken/")).toMatchObject({
        code: "E_PRECONDITION",
        message: "cannot back up to /backups/taken: it already exists (a backup is only written to a new directory)",
      });
      expect(await refusal("/nowhere/b")).toMatchObject({
        code: "E_PRECONDITION",
        message: "cannot back up to /nowhere/b: its parent directory /nowhere does not exist",
      });
      expect(await fs.exists("/nowhere")).toBe(false);
      expect((await db.backup("/backups/fresh")).revision).toBe(1);
    } finally {
      await db.close();
    }
  });

  test("a second backup while one runs, naming the first; the next one after it works", async () => {
    const fs = new MemoryFileSystem();
    const db = await open(fs);
    try {
      await db.write([{ key: "k", value: new Uint8Array([1]) }]);
      await fs.mkdirp("/backups");
      const release = fs.holdSyncs();
      const first = db.backup("/backups/first");
      await waitFor(() => fs.syncsWaiting > 0, { what: "the first backup to wait for its sync" });
      expect(await rejection(db.backup("/backups/second"))).toMatchObject({
        code: "E_PRECONDITION",
        message: expect.stringContaining("a backup to /backups/first is under way"),
      });
      release();
      expect((await first).revision).toBe(1);
      expect((await db.backup("/backups/second")).revision).toBe(1);
    } finally {
      await db.close();
    }
  });

  test("a server that keeps no data on disk", async () => {
    const db = createDatabase();
    expect(await rejection(db.backup("/backups/b"))).toMatchObject({
      code: "E_NOT_PERSISTENT",
      message: "this server keeps no data on disk (--in-memory): there is nothing to back up",
    });
    await db.close();
  });

  test("a replicated store kept without a data directory (a server's members have one: test/cluster/replication/member-backup.test.ts)", async () => {
    const { group, databases } = await startReplicatedLocalGroup({});
    try {
      for (const db of databases.values())
        expect(await rejection(db.backup("/backups/b"))).toMatchObject({
          code: "E_NOT_PERSISTENT",
          message: "this replicated store keeps no data directory to back up",
        });
    } finally {
      for (const db of databases.values()) await db.close();
      group.stop();
    }
  });

  test("a failed checkpoint write leaves no backup and no temporary; the server goes on", async () => {
    const memory = new MemoryFileSystem();
    const { fs, made } = recordingDirs(memory);
    const db = await open(fs);
    try {
      await writeLoad(db, KEYS, { commands: 50, seed: 4 });
      await memory.mkdirp("/backups");
      memory.injectFault({ op: "append", code: "ENOSPC", pathIncludes: "/backups/b.tmp-", times: 1 });
      expect(await rejection(db.backup("/backups/b"))).toMatchObject({
        code: "E_DISK",
        message: expect.stringContaining("the backup to /backups/b failed: the disk is full (ENOSPC)"),
      });
      await expectNothingLeft(memory, made, "/backups/b");
      await db.write([{ key: "after", value: new Uint8Array([1]) }]);
      expect((await db.backup("/backups/b")).revision).toBe(db.revision);
    } finally {
      await db.close();
    }
  });
});

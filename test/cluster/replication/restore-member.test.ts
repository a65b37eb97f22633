import { expect, test } from "bun:test";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { CHECKPOINT_SNAPSHOT_DATA, loadMemberCheckpoint } from "../../../src/cluster/replication/member-checkpoints.ts";
import { raftIdOf } from "../../../src/cluster/replication/member-id.ts";
import {
  isRestoredClusterId,
  refuseFoundingRestoredCluster,
  restoredClusterId,
  restoredDirCheck,
  restoredLogCheck,
  restoredPosition,
  restoreMember,
} from "../../../src/cluster/replication/restore-member.ts";
import type { FileSystem } from "../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import { createMvccStore } from "../../../src/storage/mvcc/store.ts";
import { expectNothingLeft, keyNames, recordingDirs, writeLoad } from "../../helpers/backup.ts";
import { rejection, rejectionMessage } from "../../helpers/rejection.ts";

/**
 * `homekv restore`'s files (restore-member.ts), read back as a member's start reads them: the Raft
 * log begins at a snapshot at index ms × 1000 of term ms whose only voter is the founder, and the checkpoint
 * it stands for is the backup's store with the founder as the group's member. (A server started on
 * them, and a member added to it: test/cluster/cluster-backup.test.ts.)
 */
const KEYS = keyNames("k", 80);
const FOUNDER = { name: "r1", peerAddress: "127.0.0.1:20011" };
/** The restore's clock: its log stands at index NOW × 1000 of term NOW, its cluster id says NOW. */
const NOW = 1_765_000_000_123;
const CLUSTER_ID = `homekv.restored-${NOW}`;
const INDEX = NOW * 1_000;

/** `homekv restore` of the backup at /backups/b into /data/r1, for FOUNDER, at NOW. */
const restoreR1 = (fs: FileSystem) =>
  restoreMember({
    fs,
    backup: "/backups/b",
    dataDir: "/data/r1",
    founder: FOUNDER,
    clusterIdBase: "homekv",
    nowMs: () => NOW,
  });

async function backedUp(fs: MemoryFileSystem) {
  const db = await openDurableDatabase({ fs, dir: "/data/single", historyRevisions: 100_000, isAlive: () => false });
  await writeLoad(db, KEYS, { commands: 120, seed: 7 });
  // Compacted: a backup's floor travels with it (a partitioned cluster's backup is compacted at its revision).
  const { compactedRevision } = await db.compact(db.revision - 20);
  await fs.mkdirp("/backups");
  const backup = await db.backup("/backups/b");
  return { db, backup, compactedRevision };
}

test("the member's log starts at the backup, as a snapshot with the founder its only voter; its checkpoint is the backup's store", async () => {
  const fs = new MemoryFileSystem();
  const { db, backup, compactedRevision } = await backedUp(fs);
  const restored = await restoreR1(fs);
  expect(restored).toMatchObject({ revision: backup.revision, keys: backup.keys, clusterId: CLUSTER_ID });
  for (const part of ["ENGINE", "RESTORED", "checkpoints", "raft"])
    expect(await fs.exists(`/data/r1/${part}`)).toBe(true);

  const log = await DurableRaftLog.open(fs, "/data/r1/raft");
  const id = raftIdOf(FOUNDER.name);
  expect(log.snapshot()).toEqual({
    index: INDEX,
    term: NOW,
    data: CHECKPOINT_SNAPSHOT_DATA,
    conf: { voters: [id], learners: [] },
  });
  expect(log.hardState()).toEqual({ term: NOW, vote: 0, commit: INDEX });
  expect([log.firstIndex(), log.lastIndex()]).toEqual([INDEX + 1, INDEX]);
  await log.close();

  const store = createMvccStore({ historyRevisions: 100_000 });
  const loaded = await loadMemberCheckpoint(fs, "/data/r1/checkpoints", INDEX, store);
  expect(loaded).toMatchObject({
    index: INDEX,
    revision: backup.revision,
    raft: { term: NOW, voters: [id], learners: [] },
  });
  expect(loaded!.replica).toEqual({ members: [FOUNDER], requestIds: [] });
  // Every key as the single server had it at the backup's revision, and no read below its floor.
  expect(store.readRecords(KEYS)).toEqual(db.read(KEYS, backup.revision).records);
  expect(compactedRevision).toBeGreaterThan(0);
  expect(store.compactedRevision).toBe(compactedRevision);
  await db.close();
});

test("a restore the disk fails leaves neither the member's directory nor its temporary, and the backup as it was", async () => {
  const memory = new MemoryFileSystem();
  const { db } = await backedUp(memory);
  await db.close();
  const before = await memory.list("/backups/b/checkpoints");
  const { fs, made } = recordingDirs(memory);
  memory.injectFault({ op: "append", code: "ENOSPC", pathIncludes: "/data/r1.tmp-", times: 1 });
  expect(await rejection(restoreR1(fs))).toMatchObject({
    code: "E_DISK",
    message: expect.stringContaining("the restore into /data/r1 failed: the disk is full (ENOSPC)"),
  });
  await expectNothingLeft(memory, made, "/data/r1");
  expect(await memory.list("/backups/b/checkpoints")).toEqual(before);
  // The next attempt, the disk mended, writes it whole.
  expect((await restoreR1(fs)).keys).toBeGreaterThan(0);
});

test("a restored directory starts only under its member's name and cluster id; under a restored cluster's id no one founds a group, nor brings another cluster's log", async () => {
  const fs = new MemoryFileSystem();
  const { db } = await backedUp(fs);
  await db.close();
  await restoreR1(fs);
  const self = { name: "r1", clusterId: CLUSTER_ID };
  await restoredDirCheck(fs, "/data/r1", self);
  const refusal = `data directory /data/r1 was restored as member r1 of cluster ${CLUSTER_ID} (homekv restore): start it with --node-id r1 --cluster-id ${CLUSTER_ID}`;
  for (const other of [{ name: "r2" }, { clusterId: "homekv" }])
    expect(await rejection(restoredDirCheck(fs, "/data/r1", { ...self, ...other }))).toMatchObject({
      code: "E_CONFIG",
      message: refusal,
    });
  // A directory no restore wrote is not its business.
  await restoredDirCheck(fs, "/data/single", { name: "anyone", clusterId: "homekv" });
  // The id a restore mints says when; a log under it must be empty or reach at least that far.
  expect([restoredClusterId("prod", NOW), isRestoredClusterId(restoredClusterId("prod", NOW))]).toEqual([
    `prod.restored-${NOW}`,
    true,
  ]);
  expect(isRestoredClusterId("prod")).toBe(false);
  const check = (lastIndex: number) => () => restoredLogCheck(CLUSTER_ID, lastIndex, "/data/x");
  check(NOW * 1_000)(); // the restored member itself
  check(NOW * 1_000 + 500)(); // a member that joined, restarted
  check(0)(); // a joiner, empty (perhaps with the term it learned before its snapshot came)
  for (const lastIndex of [3, 40, NOW * 1_000 - 1])
    expect(check(lastIndex)).toThrow(
      `data directory /data/x holds the Raft log of another cluster (its last index ${lastIndex} is below ${NOW * 1_000}, where cluster ${CLUSTER_ID} began)`,
    );
  restoredLogCheck("prod", 40, "/data/x");
  // Founding a group under a restored id, on a directory with no log yet: refused before anything is written.
  const founding = (initialState: string) => ({ kind: "static", initialState });
  expect(await rejectionMessage(refuseFoundingRestoredCluster(fs, "/data/new", CLUSTER_ID, founding("new")))).toMatch(
    `cluster ${CLUSTER_ID} was restored from a backup (homekv restore) and exists already`,
  );
  expect(await fs.exists("/data/new")).toBe(false);
  await refuseFoundingRestoredCluster(fs, "/data/new", CLUSTER_ID, founding("existing"));
  await refuseFoundingRestoredCluster(fs, "/data/r1", CLUSTER_ID, founding("new")); // its log is there
  await refuseFoundingRestoredCluster(fs, "/data/new", "prod", founding("new"));
  expect(() => restoredPosition(2 ** 53)).toThrow("a restore needs a clock set right");
});

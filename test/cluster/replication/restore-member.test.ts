import { expect, test } from "bun:test";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { CHECKPOINT_SNAPSHOT_DATA, loadMemberCheckpoint } from "../../../src/cluster/replication/member-checkpoints.ts";
import { raftIdOf } from "../../../src/cluster/replication/member-id.ts";
import { restoreMember } from "../../../src/cluster/replication/restore-member.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import { createMvccStore } from "../../../src/storage/mvcc/store.ts";
import { expectNothingLeft, keyNames, recordingDirs, writeLoad } from "../../helpers/backup.ts";

/**
 * `homekv restore`'s files (restore-member.ts), read back as a member's start reads them: the Raft
 * log begins at a snapshot at index 1 of term 1 whose only voter is the founder, and the checkpoint
 * it stands for is the backup's store with the founder as the group's member. (A server started on
 * them, and a member added to it: test/cluster/cluster-backup.test.ts.)
 */
const KEYS = keyNames("k", 80);
const FOUNDER = { name: "r1", peerAddress: "127.0.0.1:20011" };

async function backedUp(fs: MemoryFileSystem) {
  const db = await openDurableDatabase({ fs, dir: "/data/single", historyRevisions: 100_000, isAlive: () => false });
  await writeLoad(db, KEYS, { commands: 120, seed: 7 });
  await fs.mkdirp("/backups");
  const backup = await db.backup("/backups/b");
  return { db, backup };
}

test("the member's log starts at the backup, as a snapshot with the founder its only voter; its checkpoint is the backup's store", async () => {
  const fs = new MemoryFileSystem();
  const { db, backup } = await backedUp(fs);
  const restored = await restoreMember({ fs, backup: "/backups/b", dataDir: "/data/r1", founder: FOUNDER });
  expect(restored).toMatchObject({ revision: backup.revision, keys: backup.keys });
  for (const part of ["ENGINE", "checkpoints", "raft"]) expect(await fs.exists(`/data/r1/${part}`)).toBe(true);

  const log = await DurableRaftLog.open(fs, "/data/r1/raft");
  const id = raftIdOf(FOUNDER.name);
  expect(log.snapshot()).toEqual({
    index: 1,
    term: 1,
    data: CHECKPOINT_SNAPSHOT_DATA,
    conf: { voters: [id], learners: [] },
  });
  expect(log.hardState()).toEqual({ term: 1, vote: 0, commit: 1 });
  expect([log.firstIndex(), log.lastIndex()]).toEqual([2, 1]);
  await log.close();

  const store = createMvccStore({ historyRevisions: 100_000 });
  const loaded = await loadMemberCheckpoint(fs, "/data/r1/checkpoints", 1, store);
  expect(loaded).toMatchObject({ index: 1, revision: backup.revision, raft: { term: 1, voters: [id], learners: [] } });
  expect(loaded!.replica).toEqual({ members: [FOUNDER], requestIds: [] });
  // Every key as the single server had it at the backup's revision.
  expect(store.readRecords(KEYS)).toEqual(db.read(KEYS, backup.revision).records);
  await db.close();
});

test("a restore the disk fails leaves neither the member's directory nor its temporary, and the backup as it was", async () => {
  const memory = new MemoryFileSystem();
  const { db } = await backedUp(memory);
  await db.close();
  const before = await memory.list("/backups/b/checkpoints");
  const { fs, made } = recordingDirs(memory);
  memory.injectFault({ op: "append", code: "ENOSPC", pathIncludes: "/data/r1.tmp-", times: 1 });
  await expect(
    restoreMember({ fs, backup: "/backups/b", dataDir: "/data/r1", founder: FOUNDER }),
  ).rejects.toMatchObject({
    code: "E_DISK",
    message: expect.stringContaining("the restore into /data/r1 failed: the disk is full (ENOSPC)"),
  });
  await expectNothingLeft(memory, made, "/data/r1");
  expect(await memory.list("/backups/b/checkpoints")).toEqual(before);
  // The next attempt, the disk mended, writes it whole.
  expect(
    (await restoreMember({ fs, backup: "/backups/b", dataDir: "/data/r1", founder: FOUNDER })).keys,
  ).toBeGreaterThan(0);
});

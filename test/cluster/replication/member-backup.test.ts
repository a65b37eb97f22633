import { afterEach, expect, test } from "bun:test";
import { existsSync, readdirSync } from "node:fs";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import { expectRestored, keyNames, writeLoad } from "../../helpers/backup.ts";
import { scratchDir } from "../../helpers/processes.ts";
import { rejection } from "../../helpers/rejection.ts";
import { waitFor } from "../../helpers/wait.ts";
import { startTcpGroup, type TcpGroup } from "./tcp-group.ts";

/**
 * The Backup call on a member of a replicated group (member-checkpoints.ts), in one process over
 * real TCP (tcp-group.ts): the store at a revision that holds every write acknowledged before the
 * call, written as a single server's data directory; refused, leaving nothing, by a member that
 * cannot learn its group's commit.
 */
const HISTORY = { historyRevisions: 100_000 };
const KEYS = keyNames("k", 60);
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startGroup(readTimeoutMs?: number): Promise<TcpGroup> {
  const group = await startTcpGroup({ settings: HISTORY, readTimeoutMs });
  cleanups.push(() => group.close());
  return group;
}

function backupRoot(): string {
  const root = scratchDir("homekv-member-backup-");
  cleanups.push(root.cleanup);
  return root.path;
}

test("a follower's backup, taken while writes go on, holds every write acknowledged before the call, and opens as a single server", async () => {
  const group = await startGroup();
  const leader = await group.leader();
  const follower = group.members.find((m) => m !== leader)!;
  await writeLoad(leader.db, KEYS, { commands: 200, seed: 1 });
  const acknowledged = leader.db.revision;
  const target = `${backupRoot()}/backup`;
  const [backup] = await Promise.all([
    follower.db.backup(target),
    writeLoad(leader.db, KEYS, { commands: 50, seed: 2 }),
  ]);
  expect(backup.revision).toBeGreaterThanOrEqual(acknowledged);
  expect(backup).toMatchObject({
    linkedBytes: 0,
    keys: leader.db.read(KEYS, backup.revision).records.filter((r) => r.value).length,
  });
  expect(readdirSync(target).sort()).toEqual(["ENGINE", "checkpoints", "wal"]);
  expect(readdirSync(`${target}/checkpoints`)).toEqual([`${String(backup.revision).padStart(20, "0")}.ckpt`]);
  expect(follower.lines.some((line) => line.startsWith(`backup to ${target} at revision ${backup.revision}:`))).toBe(
    true,
  );
  // The follower's own directory gained nothing: the backup is the only copy written.
  expect(readdirSync(`${follower.dir}/checkpoints`).filter((name) => name.endsWith(".ckpt"))).toEqual([]);
  await expectRestored(leader.db, openDurableDatabase({ ...HISTORY, dir: target }), backup.revision, KEYS);
}, 60_000);

test("a member cut off from its group refuses a backup, leaving nothing; once it hears a leader again it takes one with every write", async () => {
  const group = await startGroup(300);
  const leader = await group.leader();
  const follower = group.members.find((m) => m !== leader)!;
  group.isolate(follower);
  await writeLoad(leader.db, KEYS, { commands: 30, seed: 3 });
  expect(follower.db.revision).toBeLessThan(leader.db.revision);
  const root = backupRoot();
  expect(await rejection(follower.db.backup(`${root}/b`))).toMatchObject({
    code: "E_UNAVAILABLE",
    message: expect.stringContaining(
      "no backup: this member could not catch up with its group's commit (no linearizable read within 300 ms",
    ),
  });
  expect(readdirSync(root)).toEqual([]);
  expect(existsSync(`${root}/b`)).toBe(false);
  group.heal();
  // Refused again until its transport has reconnected and a ReadIndex round completes within 300 ms.
  const backup = await waitFor(() => follower.db.backup(`${root}/b`).catch(() => undefined), {
    what: "the healed follower to take a backup",
  });
  expect(backup.revision).toBe(leader.db.revision);
  await expectRestored(leader.db, openDurableDatabase({ ...HISTORY, dir: `${root}/b` }), backup.revision, KEYS);
}, 60_000);

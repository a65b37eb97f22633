import { expect, test } from "bun:test";
import { partitionGroupId } from "../../../src/cluster/txn/partition-group.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import { isolate } from "../meta/meta-nodes.ts";
import {
  type CheckpointedReplica,
  CHECKPOINT_DIR as DIR,
  history,
  leading,
  openReplica,
  restart,
  startReplicas as startCheckpointedReplicas,
} from "./checkpointed-replicas.ts";

/**
 * A partition's checkpoints: its replicas on three in-process nodes (real hosts over loopback
 * transports), checkpointing every 20 entries and keeping 5 behind. The state a checkpoint carries
 * beside the store (locks, fates) is checked through a replica that has only the checkpoint to go by.
 */
const startReplicas = () => startCheckpointedReplicas({ logEntries: 20, tailEntries: 5 }, () => new MemoryFileSystem());

const nodes = (replicas: readonly CheckpointedReplica[]) => replicas.map((r) => r.node);
const compacted = (replica: CheckpointedReplica) => replica.engine.group(partitionGroupId(0)).snapshot().index;

test("a replica cut off while the others compacted past it is streamed the leader's checkpoint, locks, fates and request ids with it; a restart begins from its own", async () => {
  const replicas = await startReplicas();
  const leader = await leading(replicas);
  const cut = replicas.find((r) => r !== leader)!;
  const heal = isolate(cut.node, nodes(replicas));
  const oracle = leader.node.timestamps;
  for (let i = 0; i < 60; i++) await leader.group.write([{ key: `k${i % 10}`, value: bytes(`v${i}`) }]);
  // An open transaction (its lock), one rolled back and one committed (their fates): state beside the store.
  const open = await oracle.take(1);
  const prewrite = (startTs: number, key: string, group = leader.group) =>
    group.propose({
      type: "prewrite",
      startTs,
      primary: key,
      expiresAtMs: Date.now() + 600_000,
      mutations: [{ key, value: bytes(`${key}-value`), expiresAtMs: Date.now() + 900_000 }],
    });
  expect(await prewrite(open, "locked")).toEqual({ ok: true });
  const rolledBack = await oracle.take(1);
  expect(await leader.group.propose({ type: "rollback", startTs: rolledBack, keys: ["gone"], decides: true })).toEqual({
    ok: true,
  });
  const committed = await oracle.take(1);
  expect(await prewrite(committed, "done")).toEqual({ ok: true });
  const commitTs = await oracle.take(1);
  expect(
    await leader.group.propose({ type: "commit", startTs: committed, commitTs, keys: ["done"], primary: "done" }),
  ).toEqual({ ok: true });
  // A write with a request id, decided here: the id is remembered beside the store too.
  const once = await oracle.take(1);
  expect(await prewrite(once, "once")).toEqual({ ok: true });
  const onceTs = await oracle.take(1);
  const request = { id: "req-1", deleted: 0 };
  expect(
    await leader.group.propose({
      type: "commit",
      startTs: once,
      commitTs: onceTs,
      keys: ["once"],
      primary: "once",
      request,
    }),
  ).toEqual({ ok: true });
  for (let i = 60; i < 100; i++) await leader.group.write([{ key: `k${i % 10}`, value: bytes(`v${i}`) }]);
  await waitFor(() => compacted(leader) > 60, { what: "the leader's log compacted past 60" });
  expect(cut.group.driver.appliedIndex).toBeLessThan(compacted(leader));
  expect(leader.group.driver.stats().snapshotsSent).toBe(0);

  heal();
  await waitFor(() => cut.group.store.revision === leader.group.store.revision, {
    what: "the cut replica at the leader's revision",
  });
  expect(leader.group.driver.stats().snapshotsSent).toBeGreaterThanOrEqual(1);
  expect(history(cut.group)).toBe(history(leader.group));

  // The cut replica leads: its locks and fates are those the snapshot carried.
  leader.group.driver.transferLeadership(cut.node.id);
  await waitFor(() => cut.group.driver.leads, { what: "the cut replica to lead" });
  expect(await cut.group.status("locked", open)).toMatchObject({ state: "open", lock: { startTs: open } });
  expect(await cut.group.status("gone", rolledBack)).toEqual({ state: "rolled-back" });
  expect(await cut.group.status("done", committed)).toEqual({ state: "committed", commitTs });
  const retry = await oracle.take(1);
  expect(await prewrite(retry, "again", cut.group)).toEqual({ ok: true });
  expect(
    await cut.group.propose({
      type: "commit",
      startTs: retry,
      commitTs: await oracle.take(1),
      keys: ["again"],
      primary: "again",
      request,
    }),
  ).toEqual({ ok: false, refusal: { kind: "duplicate", write: { revision: onceTs, deleted: 0 } } });
  const now = await oracle.take(1);
  expect(await cut.group.read(["locked"], now)).toMatchObject([{ lock: { startTs: open } }]);
  const [done] = await cut.group.read(["done"], now);
  expect(done && "record" in done && text(done.record.value!)).toBe("done-value");
  // The lock's TTL for the version it writes came along too: committed now, the key expires.
  expect(await cut.group.propose({ type: "commit", startTs: open, commitTs: now, keys: ["locked"] })).toEqual({
    ok: true,
  });
  const [locked] = await cut.group.read(["locked"], now);
  expect(locked && "record" in locked && locked.record.expiresAtMs).toBeGreaterThan(Date.now() + 800_000);

  // Every replica compacts its own log, and a restart begins from its newest checkpoint: its
  // store is whole before it hears from any other replica.
  const follower = replicas.find((r) => !r.group.driver.leads)!;
  await waitFor(() => compacted(follower) > 60, { what: "a follower's log compacted past 60" });
  const before = history(follower.group);
  const revision = follower.group.store.revision;
  const healRestarted = isolate(follower.node, nodes(replicas));
  await restart(follower);
  expect(follower.group.store.revision).toBeGreaterThan(0);
  healRestarted();
  await waitFor(() => follower.group.store.revision === revision, { what: "the restarted follower caught up" });
  expect(history(follower.group)).toBe(before);
});

test("a replica whose log is empty (retired, and placed here again) starts empty even beside an earlier replica's checkpoints, and is sent the leader's", async () => {
  const replicas = await startReplicas();
  const leader = await leading(replicas);
  for (let i = 0; i < 50; i++) await leader.group.write([{ key: `k${i}`, value: bytes(`v${i}`) }]);
  const follower = replicas.find((r) => r !== leader)!;
  await waitFor(() => compacted(follower) > 20, { what: "a follower's log compacted past 20" });
  // Retired as PartitionReplicas does, but stopped before its checkpoints were removed (a crash).
  follower.node.host.remove(partitionGroupId(0));
  await follower.group.stop();
  await follower.engine.retireGroup(partitionGroupId(0));
  expect((await follower.fs.list(DIR)).length).toBeGreaterThan(0);
  const heal = isolate(follower.node, nodes(replicas));
  follower.group = await openReplica(follower);
  expect(follower.group.store.revision).toBe(0);
  expect(await follower.fs.list(DIR)).toEqual([]);
  for (let i = 50; i < 60; i++) await leader.group.write([{ key: `k${i}`, value: bytes(`v${i}`) }]);
  heal();
  await waitFor(() => follower.group.store.revision === leader.group.store.revision, {
    what: "the replica placed again at the leader's revision",
  });
  expect(history(follower.group)).toBe(history(leader.group));
});

test("the Checkpoint call on a replica that fell behind holds every write acknowledged before it (a serializable one, what it applied)", async () => {
  const replicas = await startReplicas();
  const leader = await leading(replicas);
  const behind = replicas.find((r) => r !== leader)!;
  // The replica hears nothing while the other two commit: it has none of these writes.
  const heal = isolate(behind.node, nodes(replicas));
  for (let i = 0; i < 5; i++) await leader.group.write([{ key: `k${i}`, value: bytes(`v${i}`) }]);
  expect(behind.group.store.revision).toBeLessThan(leader.group.store.revision);
  // Serializable: what the replica applied, though it cannot reach its group.
  const applied = behind.group.store.revision;
  expect(await behind.group.checkpoint({ serializable: true })).toMatchObject({ revision: applied, entries: 0 });
  const written = behind.group.checkpoint();
  heal();
  const info = await written;
  expect(info.revision).toBe(leader.group.store.revision);
  expect(info.entries).toBe(5);
});

import { expect, test } from "bun:test";
import { waitFor } from "../../helpers/wait.ts";
import type { MetaNode } from "../meta/meta-nodes.ts";
import { bytes, startReviewDatabase, text } from "../review19b/db.ts";

/**
 * Compaction's safe point (TxnPartition.compact) stays below every open lock's start, but knows
 * nothing of transactions that have read and not yet locked: TiKV keeps its GC safe point below
 * every live transaction's start timestamp for this. A Txn reads at S; the key is deleted at
 * D > S; Compact(D) lets each replica's GC drop the tombstone (a key whose newest version is a
 * delete at or below the compacted revision leaves the store); the Txn's commit then checks for a
 * version at or after S (TxnPartition.conflict: versions.newest(key)), finds none, and commits on
 * a compare the key no longer met: a write conflict missed. (Each replica's GC runs on its own
 * schedule, so one that had not collected yet would refuse the same entry: replicas can diverge.)
 */
/** The review's in-process partitioned database, whose next commit after a read can be held. */
async function startRig() {
  /** The node the coordinator takes its timestamps from. */
  let clock: MetaNode | undefined;
  const { db, coordinator, nodes, groups, access } = await startReviewDatabase(2, {
    timestamps: (count) => clock!.timestamps.take(count),
  });
  clock = nodes[0]!;
  let hold: { reached: () => void; released: Promise<void> } | undefined;
  const commit = coordinator.commit.bind(coordinator);
  coordinator.commit = async (mutations, readAt) => {
    const held = hold;
    hold = undefined;
    if (held && readAt !== undefined) {
      held.reached();
      await held.released;
    }
    return commit(mutations, readAt);
  };
  /** Holds the next commit that read first (a Txn's) until released. */
  const holdNextCommit = () => {
    const reached = Promise.withResolvers<void>();
    const released = Promise.withResolvers<void>();
    hold = { reached: () => reached.resolve(), released: released.promise };
    return { reached: reached.promise, release: () => released.resolve() };
  };
  const takeTimestampsFrom = (node: MetaNode) => {
    clock = node;
  };
  return { db, nodes, groups, access, holdNextCommit, takeTimestampsFrom };
}

test("a Txn whose compared key was deleted and compacted after its read does not commit on the stale compare", async () => {
  const { db, nodes, groups, access, holdNextCommit } = await startRig();
  const key = "k";
  await db.write([{ key, value: bytes("A") }]);
  const held = holdNextCommit();
  // If k is "A", set it to "B".
  const txn = db.txn({
    compares: [{ key, target: "value", op: "==", value: bytes("A") }],
    success: [{ key, value: bytes("B") }],
    failure: [],
  });
  await held.reached; // read at S, k == "A"
  const deleted = await db.write([{ key, value: null }]);
  await db.compact(deleted.revision);
  const partition = access.partitionOf(key);
  await waitFor(() => nodes.every((node) => groups.get(node)![partition]!.store.newestRevision(key) === 0), {
    what: "every replica's GC to drop the compacted tombstone",
  });
  held.release();
  const result = await txn;
  // k was deleted before the commit: the compare cannot hold then (the Txn runs again and fails).
  expect({ succeeded: result.succeeded, k: text((await db.get([key])).records[0]!.value) }).toEqual({
    succeeded: false,
    k: undefined,
  });
}, 60_000);

/**
 * The same race with one follower of the key's partition cut off meanwhile: the leader and the other
 * follower have collected the tombstone when the commit is applied, and take it; the follower, caught
 * up afterwards, applies the delete, the compaction and the commit in one go, before its GC ran, still
 * sees the delete at D >= S, and refuses it. The replicas of one partition then hold different values.
 */
test("replicas of a partition agree on a commit applied after a compaction, whatever their GC did", async () => {
  const { db, nodes, groups, access, holdNextCommit, takeTimestampsFrom } = await startRig();
  const key = "k";
  const partition = access.partitionOf(key);
  await db.write([{ key, value: bytes("A") }]);
  const replicaOf = (node: MetaNode) => groups.get(node)![partition]!;
  const leader = nodes.find((node) => replicaOf(node).driver.leads)!;
  const metaLeader = nodes.find((node) => node.meta.driver.leads);
  const cut = nodes.find((node) => node !== leader && node !== metaLeader)!;
  const others = nodes.filter((node) => node !== cut);
  takeTimestampsFrom(leader);
  const held = holdNextCommit();
  const txn = db.txn({
    compares: [{ key, target: "value", op: "==", value: bytes("A") }],
    success: [{ key, value: bytes("B") }],
    failure: [],
  });
  await held.reached;
  const name = (node: MetaNode) => `n${node.id}`;
  cut.transport.partition(others.map(name));
  for (const node of others) node.transport.partition([name(cut)]);
  const deleted = await db.write([{ key, value: null }]);
  await db.compact(deleted.revision);
  await waitFor(() => others.every((node) => replicaOf(node).store.newestRevision(key) === 0), {
    what: "the connected replicas' GC to drop the compacted tombstone",
  });
  held.release();
  await txn;
  cut.transport.heal();
  for (const node of others) node.transport.heal([name(cut)]);
  const leaderReplica = replicaOf(leader);
  await waitFor(() => replicaOf(cut).driver.appliedIndex >= leaderReplica.driver.appliedIndex, {
    what: "the cut-off follower to catch up",
  });
  const values = nodes.map((node) => text(replicaOf(node).store.read([key])[0]));
  expect(values).toEqual(values.map(() => values[0]));
}, 60_000);

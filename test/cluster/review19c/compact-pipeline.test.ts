import { expect, test } from "bun:test";
import type { PartitionGroup } from "../../../src/cluster/txn/partition-group.ts";
import { waitFor } from "../../helpers/wait.ts";
import type { MetaNode } from "../meta/meta-nodes.ts";
import { bytes, startReviewDatabase, text } from "../review19b/db.ts";
import { leaderOf } from "../txn/partition-nodes.ts";

/**
 * Holds the next timestamps `node` hands to a caller after the oracle answered them, until
 * released: a slow answer from the meta leader, as a loaded network gives one.
 */
function holdNextTimestamps(node: MetaNode) {
  const take = node.timestamps.take.bind(node.timestamps);
  const released = Promise.withResolvers<void>();
  let held = 0;
  node.timestamps.take = async (count: number) => {
    const first = await take(count);
    node.timestamps.take = take; // only the next caller is held
    held++;
    await released.promise;
    return first;
  };
  return { held: () => held, release: () => released.resolve() };
}

/**
 * A one-round write takes its commit timestamp T through the partition leader's CommitPipeline and
 * is proposed once the oracle answered. Meanwhile a two-phase commit at C > T on the same partition
 * is proposed directly and applied, and Compact (any target at or above C, at most a fresh
 * timestamp) raises the partition's compacted revision to C: TxnPartition.compact bounds it only
 * by the locks, not by the pipeline's timestamps given out and not yet proposed. The one-round
 * write is then applied at T <= compacted: storeVersions.write goes to applyLate, which throws
 * E_COMPACTED inside the Raft apply — the same entry on every replica, so the partition's group
 * fails everywhere and never serves again (the review's finding). Mended twice over: Compact waits
 * for the pipeline's writes asked for before it, and a commit at or below the compacted revision is
 * refused as a conflict (a result every replica reaches alike), never thrown.
 */
test("Compact while a one-round write waits for its timestamp never throws in the partition's apply", async () => {
  const { db, nodes, groups, access } = await startReviewDatabase(2);
  const partitionOfKey = (key: string) => access.partitionOf(key);
  const keys = Array.from({ length: 64 }, (_, i) => `k/${i}`);
  const [x, y] = keys.filter((key) => partitionOfKey(key) === 0);
  const z = keys.find((key) => partitionOfKey(key) === 1)!;
  const leader: PartitionGroup = await leaderOf(groups, 0, nodes);
  const leaderNode = nodes.find((node) => groups.get(node)![0] === leader)!;

  const hold = holdNextTimestamps(leaderNode);
  const write = db.write([{ key: x!, value: bytes("one-round") }]);
  await waitFor(() => hold.held() === 1, { what: "the one-round write's timestamp given, not yet proposed" });
  // A transaction over both partitions: its commit at C lands on partition 0 before the write at T < C.
  const txn = await db.txn({
    compares: [],
    success: [
      { key: y!, value: bytes("2pc") },
      { key: z, value: bytes("2pc") },
    ],
    failure: [],
  });
  // Compact waits for the pipeline's writes asked for before it (mended: it no longer compacts past them).
  const compacted = db.compact(txn.revision);
  hold.release();
  await compacted;
  expect(leader.store.compactedRevision).toBe(txn.revision); // partition 0 compacted to C

  const outcome = await write.then(
    (result) => ({ ok: true as const, result }),
    (error: unknown) => ({ ok: false as const, error: String(error) }),
  );
  // Whatever the write's fate (refused cleanly is fine), the partition must go on serving.
  const stillServing = await db.get([x!, y!]).then(
    (read) => read.records.map((record) => text(record.value)),
    (error: unknown) => `partition failed: ${String(error)}`,
  );
  expect({ outcome, stillServing }).toMatchObject({ stillServing: expect.any(Array) });
  expect(outcome.ok ? "written" : outcome.error).not.toMatch(/compacted|Raft log failed/);
}, 60_000);

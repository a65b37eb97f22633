import { expect, test } from "bun:test";
import { partitionOf } from "../../src/cluster/ring/partition-of.ts";
import { type PartitionedNode, partitionedClusters, setWhenReady } from "../helpers/partitioned-cluster.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A node restarted while a partition is moving off it: the group still counts its replica as a
 * voter (the move has not reached the removal), so the node must run that replica again after the
 * restart, as it did before it, although the placement no longer lists it.
 */
const clusters = partitionedClusters();
const PARTITIONS = 8;

/** One key in each partition. */
function keyPerPartition(): string[] {
  const keys = new Map<number, string>();
  const encoder = new TextEncoder();
  for (let i = 0; keys.size < PARTITIONS && i < 10_000; i++) {
    const key = `k/${i}`;
    const p = partitionOf(encoder.encode(key), PARTITIONS);
    if (!keys.has(p)) keys.set(p, key);
  }
  return [...keys.values()];
}

test("a node restarted mid-move runs again the replicas its groups still count", async () => {
  const cluster = clusters({ names: ["n1", "n2"], joiners: ["n3"], replicas: 2 });
  const [n1, n2] = (await cluster.startAll()) as [PartitionedNode, PartitionedNode];
  const pairs = keyPerPartition().map((key) => [key, "v"] as const);
  await setWhenReady(n2, pairs);
  // n3 is added but not started: the moves to it wait at "learner catching up", each partition
  // placed on n3 still led and voted by the two founders.
  await n2.client.clusterAdd("n3", cluster.peerAddress("n3"));
  const ring = await waitFor(
    async () => {
      const r = await n1.client.ring().catch(() => undefined);
      return r?.partitions.some((p) => !p.replicas.includes("n1")) ? r : undefined;
    },
    { what: "a placement moving a partition off n1" },
  );
  const leaving = ring.partitions.filter((p) => !p.replicas.includes("n1")).map((p) => p.partition);
  expect(leaving.length).toBeGreaterThan(0);
  // Writes to every partition still go through: n1 and n2 are both voters of every group.
  await setWhenReady(n2, pairs, 10_000);

  // n1 restarts on its data directory.
  await n1.server.stop("SIGKILL");
  await cluster.start("n1");
  // Every partition takes writes again: a group whose two voters are n1 and n2 needs n1's replica.
  await setWhenReady(n2, pairs, 20_000);
}, 120_000);

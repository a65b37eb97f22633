import { expect, test } from "bun:test";
import type { HomeKvClient } from "../../src/client/client.ts";
import type { RingResponse } from "../../src/gen/homekv_service.ts";
import { text } from "../helpers/bytes.ts";
import { type PartitionedNode, partitionedClusters, setWhenReady } from "../helpers/partitioned-cluster.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Partitions moving between real `homekv serve --partitions` processes: a node added with
 * `homekv cluster add` (started with --initial-cluster-state existing) takes its share of the
 * replicas, each moved learner → caught up → voter → the old replica removed and retired; a node
 * SIGKILLed and then removed has its replicas moved to the others. A writer of atomic key pairs
 * runs through another node all along: every pair it was told was written is read back whole
 * from every node, and no pair is ever seen half written.
 */
const clusters = partitionedClusters();

/** Whether every node's replicas are exactly those the placement gives it: the moves are done. */
async function settled(nodes: readonly PartitionedNode[]): Promise<RingResponse | undefined> {
  let ring: RingResponse | undefined;
  for (const node of nodes) {
    ring = await node.client.ring().catch(() => undefined);
    if (ring === undefined) return undefined;
    for (const p of ring.partitions) {
      if (p.local !== p.replicas.includes(node.name)) return undefined;
      if (p.local && p.leader === "") return undefined;
    }
  }
  return ring;
}

/** Writes pairs a/i, b/i = i through `client`, one at a time, until told to stop; the i it was told were written. */
function pairWriter(client: HomeKvClient) {
  const acked: number[] = [];
  let failures = 0;
  let stop = false;
  const done = (async () => {
    // Bounded: at most 2,000 pairs, whatever the moves take.
    for (let i = 0; i < 2_000 && !stop; i++) {
      try {
        await client.set([
          [`a/${i}`, String(i)],
          [`b/${i}`, String(i)],
        ]);
        acked.push(i);
      } catch {
        failures++;
      }
    }
  })();
  return {
    acked,
    failures: () => failures,
    stop: async () => {
      stop = true;
      await done;
    },
  };
}

/** Every acknowledged pair is there, through `node`; every pair there is whole. */
async function checkPairs(node: PartitionedNode, acked: readonly number[], written: number) {
  const keys = Array.from({ length: written }, (_, i) => [`a/${i}`, `b/${i}`]).flat();
  const { records } = await node.client.get(keys);
  const values = records.map((r) => (r.value === undefined ? undefined : text(r.value)));
  for (let i = 0; i < written; i++) expect(values[2 * i]).toBe(values[2 * i + 1]);
  for (const i of acked) expect(values[2 * i]).toBe(String(i));
}

test("a node added takes its share of the replicas, and a node removed gives its away, while writes go on", async () => {
  const cluster = clusters({ names: ["n1", "n2", "n3"], joiners: ["n4"] });
  const [n1, n2, n3] = (await cluster.startAll()) as [PartitionedNode, PartitionedNode, PartitionedNode];
  await setWhenReady(n3, [["ready", "yes"]]);
  await waitFor(() => settled([n1, n2, n3]), { what: "the founding placement to be in force", timeoutMs: 30_000 });
  const writer = pairWriter(n3.client);

  const n4 = await cluster.start("n4");
  await n2.client.clusterAdd("n4", cluster.peerAddress("n4"));
  const nodes = [n1, n2, n3, n4];
  const withFour = await waitFor(() => settled(nodes), { what: "the moves to n4 to finish", timeoutMs: 60_000 });
  // 24 replicas over 4 nodes: n4 holds its 6, every one of them moved from another node.
  expect(withFour.shares.map((share) => [share.nodeId, share.replicas])).toEqual([
    ["n1", 6],
    ["n2", 6],
    ["n3", 6],
    ["n4", 6],
  ]);
  const afterJoin = writer.acked.length;
  await waitFor(() => writer.acked.length >= afterJoin + 20, { what: "writes after the join" });

  // n1 dies; removed, its replicas go to the three left, which keep quorums throughout.
  n1.server.proc.kill("SIGKILL");
  await n1.server.proc.exited;
  await waitFor(() => n2.client.clusterRemove("n1").catch(() => undefined), { what: "n1's removal" });
  const withThree = await waitFor(() => settled([n2, n3, n4]), {
    what: "the moves off n1 to finish",
    timeoutMs: 60_000,
  });
  expect(withThree.shares.map((share) => [share.nodeId, share.replicas])).toEqual([
    ["n2", 8],
    ["n3", 8],
    ["n4", 8],
  ]);
  const afterRemoval = writer.acked.length;
  await waitFor(() => writer.acked.length >= afterRemoval + 20, { what: "writes after the removal" });
  await writer.stop();
  const written = writer.acked.length + writer.failures();
  for (const node of [n2, n3, n4]) await checkPairs(node, writer.acked, written);
  console.log(
    `partition moves: ${writer.acked.length} pairs written while n4 joined and n1 left, ${writer.failures()} refused or unknown`,
  );
}, 180_000);

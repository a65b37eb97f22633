import { expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { REPLICATED_CHECKPOINT_FILES } from "../../src/storage/checkpoint/checkpoint-format.ts";
import { text } from "../helpers/bytes.ts";
import { type PartitionedNode, partitionedClusters, setWhenReady } from "../helpers/partitioned-cluster.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A partitioned cluster's replicas checkpoint their partitions and compact their logs (real
 * `homekv serve --partitions` processes): a node killed and started again begins each partition
 * from its checkpoint, and a node added is sent its leaders' checkpoints instead of their logs.
 * The thresholds are small: 64 entries shared by 4 partitions, a checkpoint every 16 entries each.
 */
const clusters = partitionedClusters();
const PARTITIONS = 4;
const ARGS = ["--checkpoint-raft-entries", "64", "--raft-log-tail-entries", "8"];

/** The checkpoints in a node's data directory, by partition. */
function checkpointsOf(node: PartitionedNode): Map<number, string[]> {
  const found = new Map<number, string[]>();
  for (let p = 0; p < PARTITIONS; p++) {
    const names = (() => {
      try {
        return readdirSync(`${node.dir}/partitions/${p}`);
      } catch {
        return [];
      }
    })();
    found.set(
      p,
      names.filter((name) => REPLICATED_CHECKPOINT_FILES.parseFileName(name) !== undefined),
    );
  }
  return found;
}

async function readAll(node: PartitionedNode, count: number): Promise<void> {
  const keys = Array.from({ length: count }, (_, i) => `key/${i}`);
  const { records } = await node.client.get(keys);
  expect(records.map((r) => text(r.value))).toEqual(keys.map((_, i) => `value-${i}`));
}

test("partitions checkpoint and compact their logs; a restart begins from the checkpoints, a node added is sent them; a node left without quorums checkpoints only when serializable", async () => {
  const cluster = clusters({
    names: ["n1", "n2", "n3"],
    joiners: ["n4"],
    replicas: 3,
    partitionsOf: () => PARTITIONS,
    args: ARGS,
  });
  const [n1, n2, n3] = (await cluster.startAll()) as [PartitionedNode, PartitionedNode, PartitionedNode];
  await setWhenReady(n2, [["key/0", "value-0"]]);
  const COUNT = 300;
  for (let i = 1; i < COUNT; i++) await n2.client.set([[`key/${i}`, `value-${i}`]]);
  // Every replica of every partition (each node holds all four) checkpointed.
  await waitFor(() => [...checkpointsOf(n1).values()].every((names) => names.length > 0), {
    what: "a checkpoint of every partition on n1",
  });

  // The Checkpoint call checkpoints each replica on the node asked: all four partitions, every key.
  const written = await n2.client.checkpoint();
  expect(written.keys).toBe(COUNT);
  expect(written.revision).toBeGreaterThan(0);
  expect(written.bytes).toBeGreaterThan(0);

  await n1.server.stop("SIGKILL");
  const again = await cluster.start("n1");
  await waitFor(() => (again.server.output().match(/loaded the checkpoint at index/g) ?? []).length === PARTITIONS, {
    what: "n1 to load a checkpoint for each partition",
    detail: () => again.server.output(),
  });
  await readAll(again, COUNT);

  // n4 joins: the replicas moved to it begin from their leaders' checkpoints, the logs before them gone.
  const n4 = await cluster.start("n4");
  await n2.client.clusterAdd("n4", cluster.peerAddress("n4"));
  await waitFor(() => /installed the leader's snapshot at index/.test(n4.server.output()), {
    what: "n4 to install a leader's snapshot",
    detail: () => n4.server.output(),
    timeoutMs: 30_000,
  });
  await readAll(n4, COUNT);

  // Every other node killed: n2's replicas have no quorum. The Checkpoint call that must catch up
  // first is refused, saying so; a serializable one writes what n2's replicas applied.
  for (const other of [again, n3, n4]) await other.server.stop("SIGKILL");
  const refused = await n2.client.checkpoint().catch((error: unknown) => error);
  // Every replica here failed alike: one reason for them all, not one each.
  expect(String(refused)).toMatch(
    /(\d+) of \1 replicas here wrote no checkpoint: partitions? [\d, ]+: could not catch up with its group's commit/,
  );
  expect(String(refused).split("could not catch up")).toHaveLength(2);
  expect(String(refused)).toContain("homekv checkpoint --serializable");
  const applied = await n2.client.checkpoint({ serializable: true });
  expect(applied.keys).toBeGreaterThan(0);
  expect(applied.keys).toBeLessThanOrEqual(COUNT);
}, 120_000);

import { expect, test } from "bun:test";
import { TxnCoordinator } from "../../../src/cluster/txn/coordinator.ts";
import { peerPartitionAccess, servePartitions } from "../../../src/cluster/txn/partition-rpc.ts";
import { partitionedDatabase } from "../../../src/node/partitioned-database.ts";
import { createWatchHub } from "../../../src/storage/watch/watch-hub.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";
import { waitFor } from "../../helpers/wait.ts";
import { names, startMetaGroup } from "../meta/meta-nodes.ts";
import { startPartitionZero } from "./partition-zero.ts";

/**
 * A Del through a node that leads nothing: its one-round commit reaches the partition's leader over
 * peer RPC, where it waits for its timestamp longer than the call's timeout (a slow meta leader).
 * Sent again, the first try would delete the key and the second be refused as a conflict with it,
 * and the Del would read again, find nothing and say it deleted 0 (the review's finding). The call
 * is not sent again: the Del's outcome is reported unknown, as a cluster reports a write whose
 * leader did not answer.
 */
test("a Del whose commit call times out while the leader waits for its timestamp is reported unknown, not sent twice", async () => {
  const nodes = await startMetaGroup({ timestampWindow: 100 });
  let slowOnce = false;
  const groups = await startPartitionZero(nodes, async (_node, first) => {
    if (slowOnce) {
      slowOnce = false;
      // The meta leader answering late, as while it fails over: longer than a partition call's timeout.
      await Bun.sleep(600);
    }
    return first;
  });
  for (const node of nodes)
    servePartitions(node.rpc, (partition) => (partition === 0 ? groups.get(node.id) : undefined));
  const leaderId = await waitFor(
    () => {
      const leader = [...groups.values()].find((group) => group.driver.leads);
      return leader && [...groups.values()].every((g) => g.driver.leader === leader.driver.leader)
        ? leader.driver.leader
        : undefined;
    },
    { what: "one leader of partition 0" },
  );
  const home = nodes.find((node) => node.id !== leaderId)!;
  const coordinator = new TxnCoordinator({
    access: peerPartitionAccess({
      rpc: home.rpc,
      local: () => groups.get(home.id),
      partitionOf: () => 0,
      candidates: () => {
        const leader = names.get(groups.get(home.id)!.driver.leader);
        const others = nodes.filter((node) => node !== home).map((node) => names.get(node.id)!);
        return leader && leader !== names.get(home.id) ? [leader, ...others.filter((n) => n !== leader)] : others;
      },
      callTimeoutMs: 300,
      pause: () => groups.get(home.id)!.driver.nextTick(),
      rounds: 100,
    }),
    timestamps: (count) => home.timestamps.take(count),
    lockTtlMs: 5_000,
    now: () => Date.now(),
    pause: (ms) => Bun.sleep(ms),
    readTimeoutMs: 5_000,
  });
  const db = partitionedDatabase({
    coordinator,
    partitions: () => 1,
    watches: createWatchHub(), // never fed: these tests watch nothing
    stats: () => ({}) as never,
    checkpoint: () => Promise.reject(new Error("these tests take no checkpoint")),
    backup: () => Promise.reject(new Error("these tests take no backup")),
    close: async () => {},
  });
  await db.write([{ key: "k", value: new TextEncoder().encode("v") }]);
  slowOnce = true;
  // Sent, not answered in time: the write is not sent again (it may have run); the caller is told so.
  expect(await rejectionMessage(db.write([{ key: "k", value: null }]))).toMatch(/may or may not have been applied/);
  // It had run, once: the key is gone, and a Set after it is the only write since.
  await waitFor(async () => (await db.get(["k"])).records[0]!.value === undefined, { what: "the delete applied" });
  const { revision } = await db.write([{ key: "k", value: new TextEncoder().encode("w") }]);
  expect((await db.get(["k"])).records[0]).toMatchObject({ modRevision: revision, version: 1 });
}, 30_000);

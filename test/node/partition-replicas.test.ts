import { expect, test } from "bun:test";
import { RaftLogEngine } from "../../src/cluster/raft/group-log-engine.ts";
import type { ConfState } from "../../src/cluster/raft/types.ts";
import { GroupMover } from "../../src/cluster/replication/group-mover.ts";
import { SERIALIZABLE_CHECKPOINT_HINT } from "../../src/cluster/replication/member-checkpoints.ts";
import type { Placement } from "../../src/cluster/ring/placement.ts";
import { partitionGroupId } from "../../src/cluster/txn/partition-group.ts";
import { HomeKvError } from "../../src/errors.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { PartitionReplicas } from "../../src/node/partition-replicas.ts";
import { mulberry32 } from "../../src/random.ts";
import { type MetaNode, names, startMetaGroup } from "../cluster/meta/meta-nodes.ts";
import { checkpointOptions } from "../cluster/txn/partition-checkpoint-options.ts";
import { text } from "../helpers/bytes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * PartitionReplicas on three in-process nodes (real hosts over loopback transports, the meta
 * group's oracle for timestamps), one partition, its placement handed to each node directly: the
 * moves the leaders make, the replicas started and retired, the tombstone a retired one leaves.
 */
const idOf = (name: string) => Number(name.slice(1));
const quiet = { debug() {}, info() {}, warn() {}, error() {} };

interface Node {
  meta: MetaNode;
  engine: RaftLogEngine;
  replicas: PartitionReplicas;
}

async function startNodes(): Promise<Node[]> {
  const metas = await startMetaGroup({ timestampWindow: 100 });
  const nodes: Node[] = [];
  for (const meta of metas) {
    const engine = await RaftLogEngine.open(new MemoryFileSystem(), "/partitions");
    const disconnected = (peer: number) =>
      meta.suspects.has(peer) || meta.transport.connected(names.get(peer)!) === false;
    const replicas = new PartitionReplicas({
      self: names.get(meta.id)!,
      engine,
      host: meta.host,
      group: {
        host: meta.host,
        id: meta.id,
        random: mulberry32(meta.id),
        tickMs: 10,
        disconnected,
        timestamps: (count) => meta.timestamps.take(count),
        readTimeoutMs: 2_000,
        checkpoints: checkpointOptions(meta),
      },
      partitionsDir: "/checkpoints",
      mover: new GroupMover({ isUp: (peer) => !disconnected(peer) }),
      members: (partition) => membersOf(nodes, partition),
      log: quiet,
      idOf,
      founder: true,
    });
    nodes.push({ meta, engine, replicas });
  }
  return nodes;
}

/** The partition's members as its leader knows them, as a peer call would find them. */
async function membersOf(nodes: readonly Node[], partition: number): Promise<ConfState> {
  const leader = nodes.map((node) => node.replicas.groups.get(partition)).find((group) => group?.driver.leads);
  if (!leader) throw new HomeKvError("E_UNAVAILABLE", `no leader of partition ${partition}`);
  return leader.members();
}

/** The replica leading the partition, after a round of every node's moves and collection. */
function leaderAfterRounds(nodes: readonly Node[], partition: number, done: (conf: ConfState) => boolean) {
  return waitFor(
    async () => {
      for (const node of nodes) {
        node.replicas.move();
        node.replicas.collect();
      }
      const leader = nodes.map((node) => node.replicas.groups.get(partition)).find((group) => group?.driver.leads);
      return leader && done(await leader.members().catch(() => ({ voters: [], learners: [] }))) ? leader : undefined;
    },
    {
      what: `partition ${partition} to reach its placement`,
      timeoutMs: 15_000,
      intervalMs: 20,
      detail: () =>
        nodes
          .map((node) => {
            const group = node.replicas.groups.get(partition);
            if (!group) return `${node.meta.id}: none`;
            const { status, conf } = group.driver.groupStatus();
            return `${node.meta.id}: ${status.role} term ${status.term} leader ${status.leader} last ${status.lastIndex} commit ${status.commit} voters ${conf.voters} learners ${conf.learners}`;
          })
          .join("\n"),
    },
  );
}

const placeAll = (nodes: readonly Node[], placement: Placement, founded: Placement) => {
  for (const node of nodes) node.replicas.place(placement, founded);
};
const sameMembers = (conf: ConfState, voters: number[]) =>
  conf.learners.length === 0 && [...conf.voters].sort().join() === voters.join();

test("a partition moves to the placement's replicas: the newcomer catches up, the replica left is retired with a tombstone, and comes back empty", async () => {
  const nodes = await startNodes();
  const [n1, n2, n3] = nodes as [Node, Node, Node];
  const founded: Placement = [["n1", "n2"]];
  placeAll(nodes, founded, founded);
  const first = await leaderAfterRounds(nodes, 0, (conf) => sameMembers(conf, [1, 2]));
  expect(n3.replicas.groups.has(0)).toBe(false);
  await first.write([{ key: "k", value: new TextEncoder().encode("before") }]);

  // n3 replaces n1: added as a learner, caught up, promoted; n1 removed, then retired.
  placeAll(nodes, [["n2", "n3"]], founded);
  const moved = await leaderAfterRounds(nodes, 0, (conf) => sameMembers(conf, [2, 3]));
  await waitFor(() => !n1.replicas.groups.has(0), { what: "n1's replica to be retired" });
  const log = n1.engine.group(partitionGroupId(0));
  expect(log.lastIndex()).toBe(0);
  const tombstone = log.hardState();
  expect(tombstone.vote).toBe(0);
  expect(tombstone.term).toBeGreaterThan(0);
  const { ts } = await moved.write([{ key: "k", value: new TextEncoder().encode("after") }]);
  const [read] = await moved.read(["k"], ts);
  expect(read && "record" in read && text(read.record.value!)).toBe("after");

  // Placed on n1 again: its replica starts from the tombstone (no founding entries, a later
  // term), waits to be added, and catches up from the leader's log.
  placeAll(nodes, [["n1", "n2"]], founded);
  const back = await leaderAfterRounds(nodes, 0, (conf) => sameMembers(conf, [1, 2]));
  const again = n1.replicas.groups.get(0)!;
  await waitFor(() => again.driver.appliedIndex >= back.driver.appliedIndex, { what: "n1 to catch up" });
  expect(again.store.readRecords(["k"], again.store.revision).map((r) => r.value && text(r.value))).toEqual(["after"]);
  expect(n3.replicas.groups.has(0)).toBe(false);
  expect(n2.replicas.groups.has(0)).toBe(true);
}, 30_000);

test("a replica the placement no longer lists stays while its group counts it", async () => {
  const nodes = await startNodes();
  const [n1, n2, n3] = nodes as [Node, Node, Node];
  const founded: Placement = [["n1", "n2", "n3"]];
  placeAll(nodes, founded, founded);
  await leaderAfterRounds(nodes, 0, (conf) => sameMembers(conf, [1, 2, 3]));
  // Only n3 hears of a placement without it: the leaders still count it, so it keeps its replica.
  n3.replicas.place([["n1", "n2"]], founded);
  for (let round = 0; round < 20; round++) {
    n3.replicas.collect();
    await n3.replicas.settled();
  }
  expect(n3.replicas.groups.has(0)).toBe(true);
  expect(n1.replicas.groups.has(0) && n2.replicas.groups.has(0)).toBe(true);
}, 30_000);

test("the Checkpoint call: every replica's holds what was acknowledged; one that cannot catch up (never added to its group) fails the call, naming its partition", async () => {
  const nodes = await startNodes();
  const [n1, , n3] = nodes as [Node, Node, Node];
  const founded: Placement = [["n1", "n2"]];
  placeAll(nodes, founded, founded);
  const leader = await leaderAfterRounds(nodes, 0, (conf) => sameMembers(conf, [1, 2]));
  await leader.write([{ key: "k", value: new TextEncoder().encode("v") }]);
  expect((await n1.replicas.checkpoint()).entries).toBe(1);

  // Only n3 is told it holds a replica: nobody adds it, and it never hears of a leader.
  n3.replicas.place([["n1", "n2", "n3"]], founded);
  await waitFor(() => n3.replicas.groups.has(0), { what: "n3 to open its replica" });
  const refused = await n3.replicas.checkpoint().catch((error: unknown) => error);
  expect(refused).toBeInstanceOf(HomeKvError);
  expect((refused as HomeKvError).code).toBe("E_UNAVAILABLE");
  expect((refused as HomeKvError).message).toBe(
    "1 of 1 replicas here wrote no checkpoint: partition 0: could not catch up with its group's commit " +
      `(no linearizable read within 2000 ms: no leader confirmed); ${SERIALIZABLE_CHECKPOINT_HINT}`,
  );
  // Serializable: the replica's applied state (nothing), with no leader to ask.
  expect(await n3.replicas.checkpoint({ serializable: true })).toMatchObject({ revision: 0, entries: 0 });
}, 30_000);

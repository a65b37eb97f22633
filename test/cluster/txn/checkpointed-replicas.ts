import { RaftLogEngine } from "../../../src/cluster/raft/group-log-engine.ts";
import type { OneAtATime } from "../../../src/cluster/replication/one-at-a-time.ts";
import { PartitionGroup, partitionGroupId } from "../../../src/cluster/txn/partition-group.ts";
import type { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { waitFor } from "../../helpers/wait.ts";
import { type MetaNode, names, startMetaGroup } from "../meta/meta-nodes.ts";

/**
 * Partition 0's replicas on three in-process nodes (real hosts over loopback transports), each with
 * its log and checkpoints on a file system of its own, for tests of the partition's checkpoints.
 */
export const CHECKPOINT_DIR = "/checkpoints/0";

export interface CheckpointedReplica<F extends MemoryFileSystem = MemoryFileSystem> {
  node: MetaNode;
  fs: F;
  engine: RaftLogEngine;
  group: PartitionGroup;
  /** When checkpoints are due (entries since the last; never: MAX_SAFE_INTEGER) and the tail kept behind them. */
  due: { logEntries: number; tailEntries: number };
  /** Where its checkpoint writes take turns with others' (a node's replicas). */
  turns?: OneAtATime;
}

export function openReplica(replica: Omit<CheckpointedReplica, "group">): Promise<PartitionGroup> {
  const { node, fs, engine, due, turns } = replica;
  return PartitionGroup.open({
    host: node.host,
    partition: 0,
    id: node.id,
    voters: [1, 2, 3],
    log: engine.group(partitionGroupId(0)),
    random: mulberry32(node.id),
    tickMs: 10,
    disconnected: (peer) => node.suspects.has(peer) || node.transport.connected(names.get(peer)!) === false,
    timestamps: (count) => node.timestamps.take(count),
    readTimeoutMs: 2_000,
    checkpoints: {
      fs,
      dir: CHECKPOINT_DIR,
      logBytes: Number.MAX_SAFE_INTEGER,
      ...due,
      send: (to, payload) => node.transport.send(names.get(to)!, payload),
      log: () => {},
      turns,
    },
  });
}

export async function startReplicas<F extends MemoryFileSystem>(
  due: CheckpointedReplica["due"],
  disk: () => F,
  turns?: OneAtATime,
): Promise<CheckpointedReplica<F>[]> {
  const nodes = await startMetaGroup({ timestampWindow: 100 });
  return Promise.all(
    nodes.map(async (node) => {
      const fs = disk();
      const engine = await RaftLogEngine.open(fs, "/raft");
      return { node, fs, engine, due, turns, group: await openReplica({ node, fs, engine, due, turns }) };
    }),
  );
}

/** Stops the replica and starts it again from what its file system holds (its log reopened). */
export async function restart(replica: CheckpointedReplica): Promise<void> {
  replica.node.host.remove(partitionGroupId(0));
  await replica.group.stop();
  await replica.engine.close();
  replica.engine = await RaftLogEngine.open(replica.fs, "/raft");
  replica.group = await openReplica(replica);
}

export function leading<R extends CheckpointedReplica>(replicas: readonly R[]): Promise<R> {
  return waitFor(
    () => {
      const leader = replicas.find((r) => r.group.driver.leads);
      return leader && replicas.every((r) => r.group.driver.leader === leader.node.id) ? leader : undefined;
    },
    { what: "one leader of partition 0 followed by all", timeoutMs: 10_000 },
  );
}

/** Every version of every key, as the store holds them: what two replicas must agree on. */
export const history = (group: PartitionGroup) =>
  JSON.stringify(group.store.dumpChains({ limit: 10_000, revision: group.store.revision }));

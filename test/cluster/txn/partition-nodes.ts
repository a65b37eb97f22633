import { RaftLogEngine } from "../../../src/cluster/raft/group-log-engine.ts";
import { partitionOf } from "../../../src/cluster/ring/partition-of.ts";
import type { PartitionAccess } from "../../../src/cluster/txn/coordinator.ts";
import { PartitionGroup, partitionGroupId } from "../../../src/cluster/txn/partition-group.ts";
import { HomeKvError } from "../../../src/errors.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { waitFor } from "../../helpers/wait.ts";
import { inOffice, type MetaNode, names, startMetaGroup } from "../meta/meta-nodes.ts";
import { checkpointOptions } from "./partition-checkpoint-options.ts";

/**
 * Three nodes running the meta group (the oracle) and `partitions` partitions, each a group of the
 * three; `timestamps` stands between a replica and its node's oracle client (a test holds one back).
 */
export async function startPartitions(
  partitions = 2,
  timestamps: (node: MetaNode, count: number) => Promise<number> = (node, count) => node.timestamps.take(count),
): Promise<{ nodes: MetaNode[]; groups: Map<MetaNode, PartitionGroup[]> }> {
  const nodes = await startMetaGroup({ timestampWindow: 100 });
  // Every commit asks the meta group for timestamps: its leader takes office first, which under a
  // loaded CI can come later than the partitions' leaders (a first write spent its 5 s deadline on it).
  await inOffice(nodes);
  const groups = new Map<MetaNode, PartitionGroup[]>();
  for (const node of nodes) {
    const engine = await RaftLogEngine.open(new MemoryFileSystem(), "/partitions");
    groups.set(
      node,
      await Promise.all(
        Array.from({ length: partitions }, (_, i) => i).map((partition) =>
          PartitionGroup.open({
            host: node.host,
            partition,
            id: node.id,
            voters: [1, 2, 3],
            log: engine.group(partitionGroupId(partition)),
            random: mulberry32(node.id * 10 + partition),
            tickMs: 10,
            disconnected: (peer) => node.suspects.has(peer) || node.transport.connected(names.get(peer)!) === false,
            timestamps: (count) => timestamps(node, count),
            readTimeoutMs: 2_000,
            checkpoints: { ...checkpointOptions(node), dir: `/checkpoints/${partition}` },
          }),
        ),
      ),
    );
  }
  return { nodes, groups };
}

/** The live replica leading `partition`, once every live node follows it. */
export function leaderOf(groups: Map<MetaNode, PartitionGroup[]>, partition: number, live: readonly MetaNode[]) {
  return waitFor(
    () => {
      const replicas = live.map((node) => groups.get(node)![partition]!);
      const leader = replicas.find((group) => group.driver.leads);
      return leader && replicas.every((group) => group.driver.leader === leader.driver.leader) ? leader : undefined;
    },
    { what: `one leader of partition ${partition}`, timeoutMs: 10_000 },
  );
}

/**
 * Each partition's leader among the nodes still running, found again (a tick later) while there is
 * none or the one asked no longer leads — what routing to a partition's leader will do over peer
 * RPC, done here in process.
 */
export function inProcessAccess(
  nodes: readonly MetaNode[],
  groups: Map<MetaNode, PartitionGroup[]>,
  partitions: number,
): PartitionAccess {
  const onLeader = async <T>(partition: number, call: (group: PartitionGroup) => Promise<T>): Promise<T> => {
    for (let attempt = 0; ; attempt++) {
      const live = nodes.filter((node) => !node.stopped);
      const leader = live.map((node) => groups.get(node)![partition]!).find((group) => group.driver.leads);
      try {
        if (leader) return await call(leader);
      } catch (error) {
        if (
          !(
            error instanceof HomeKvError && ["E_NOT_LEADER", "E_UNAVAILABLE", "E_PROPOSAL_DROPPED"].includes(error.code)
          )
        )
          throw error;
        if (attempt >= 200) throw error;
      }
      await groups.get(live[0]!)![partition]!.driver.nextTick();
    }
  };
  return {
    partitionOf: (key) => partitionOf(new TextEncoder().encode(key), partitions),
    write: (p, mutations, readAt) => onLeader(p, (g) => g.write(mutations, readAt)),
    read: (p, keys, ts, bypass) => onLeader(p, (g) => g.read(keys, ts, bypass)),
    scan: (p, range, ts, limit, bytesMax, bypass) => onLeader(p, (g) => g.scan(range, ts, limit, bytesMax, bypass)),
    compact: (p, revision) => onLeader(p, (g) => g.compact(revision)),
    changes: (p, range, after, ts, size) => onLeader(p, (g) => g.changes(range, after, ts, size)),
    propose: (p, command) => onLeader(p, (g) => g.propose(command)),
    status: (p, primary, startTs) => onLeader(p, (g) => g.status(primary, startTs)),
    request: (p, id) => onLeader(p, (g) => g.requestOf(id)),
  };
}

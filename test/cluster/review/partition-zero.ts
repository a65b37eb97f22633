import { RaftLogEngine } from "../../../src/cluster/raft/group-log-engine.ts";
import { PartitionGroup, partitionGroupId } from "../../../src/cluster/txn/partition-group.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { type MetaNode, names } from "../meta/meta-nodes.ts";
import { checkpointOptions } from "../txn/partition-checkpoint-options.ts";

/**
 * Partition 0 as a group of the three meta nodes, each replica's commit pipeline getting its
 * timestamps through `timestamps` (the node, and the first of the run the oracle gave): where a test
 * holds or delays an answer.
 */
export async function startPartitionZero(
  nodes: readonly MetaNode[],
  timestamps: (node: MetaNode, first: number) => Promise<number>,
): Promise<Map<number, PartitionGroup>> {
  const groups = new Map<number, PartitionGroup>();
  for (const node of nodes) {
    const engine = await RaftLogEngine.open(new MemoryFileSystem(), "/partitions");
    const group = await PartitionGroup.open({
      host: node.host,
      partition: 0,
      id: node.id,
      voters: [1, 2, 3],
      log: engine.group(partitionGroupId(0)),
      random: mulberry32(node.id * 10),
      tickMs: 10,
      disconnected: (peer) => node.transport.connected(names.get(peer)!) === false,
      timestamps: async (count) => timestamps(node, await node.timestamps.take(count)),
      readTimeoutMs: 2_000,
      checkpoints: { ...checkpointOptions(node), dir: "/checkpoints/0" },
    });
    groups.set(node.id, group);
  }
  return groups;
}

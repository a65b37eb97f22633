import type { PartitionCheckpointOptions } from "../../../src/cluster/txn/partition-group.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { type MetaNode, names } from "../meta/meta-nodes.ts";

/**
 * Checkpoints of a node's partition replicas in memory, their snapshot streams over the node's
 * transport; by default never due (the log is never compacted) unless `due` says after how many
 * entries, keeping `tailEntries` behind.
 */
export function checkpointOptions(
  node: MetaNode,
  due: { logEntries?: number; tailEntries?: number } = {},
): Omit<PartitionCheckpointOptions, "dir"> {
  return {
    fs: new MemoryFileSystem(),
    logBytes: Number.MAX_SAFE_INTEGER,
    logEntries: due.logEntries ?? Number.MAX_SAFE_INTEGER,
    tailEntries: due.tailEntries ?? 0,
    send: (to, payload) => node.transport.send(names.get(to)!, payload),
    log: () => {},
  };
}

import type { PersistentRaftLog } from "../../../src/cluster/raft/storage.ts";
import type { NodeId } from "../../../src/cluster/raft/types.ts";
import { hostGroup } from "../../../src/cluster/replication/hosted-group.ts";
import { peerChannels } from "../../../src/cluster/replication/peer-channels.ts";
import { RaftHost } from "../../../src/cluster/replication/raft-host.ts";
import { createPeerTransport } from "../../../src/cluster/transport/peer-transport.ts";
import type { PeerTransport } from "../../../src/cluster/transport/types.ts";

export interface HostedNodeOptions {
  id: NodeId;
  /** Every node's peer port on 127.0.0.1: node i + 1 listens on ports[i]. */
  ports: readonly number[];
  groups: number;
  quiesce: boolean;
  tickMs: number;
  /** Group `group`'s log here. */
  openLog(group: number): PersistentRaftLog | Promise<PersistentRaftLog>;
  random(group: number): () => number;
  /** Called with every entry a group applies that carries data (not its leader's empty entry, not a change of members). */
  onApply(group: number, data: Uint8Array): void;
}

export interface HostedNode {
  id: NodeId;
  host: RaftHost;
  transport: PeerTransport;
}

/**
 * One node (n1, n2, …) running `groups` Raft groups of every node in one RaftHost over a real peer
 * transport on loopback (the nodes of test/cluster/replication/raft-host.test.ts and of
 * scripts/bench-idle-hosts.ts). Its groups are numbered from 1; its host is started.
 */
export async function startHostedNode(options: HostedNodeOptions): Promise<HostedNode> {
  const { id, ports, tickMs } = options;
  const ids = ports.map((_, i) => i + 1);
  const names = new Map(ids.map((node) => [node, `n${node}`]));
  const transport = createPeerTransport({
    clusterId: "hosted",
    nodeId: `n${id}`,
    host: "127.0.0.1",
    port: ports[id - 1]!,
  });
  for (const node of ids) if (node !== id) transport.addPeer(`n${node}`, `127.0.0.1:${ports[node - 1]}`);
  const host = new RaftHost({ channels: peerChannels(transport), names, tickMs });
  for (let group = 1; group <= options.groups; group++) {
    const hosted = {
      host,
      id,
      voters: ids,
      log: await options.openLog(group),
      random: options.random(group),
      tickMs,
      quiesce: options.quiesce,
      disconnected: (peer: number) => transport.connected(names.get(peer)!) === false,
    };
    hostGroup(hosted, group, {
      apply: (entry) => {
        if (entry.data !== null && !entry.conf) options.onApply(group, entry.data);
      },
      restore: () => {},
    });
  }
  host.start();
  return { id, host, transport };
}

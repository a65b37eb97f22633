import type { MemberAddress } from "../cluster/raft/types.ts";
import { createPeerTransport } from "../cluster/transport/peer-transport.ts";
import type { RaftConfig, ServeConfig } from "./serve-config.ts";
import type { NodeLog } from "./start-node.ts";

/**
 * The node's peer transport on `--peer-port`, dialing the other `seeds`. Peers speak TLS when the
 * server does, with its certificate; --tls-client-ca makes it mutual.
 */
export function openNodeTransport(
  config: ServeConfig,
  raftConfig: RaftConfig,
  seeds: readonly MemberAddress[],
  log: NodeLog,
) {
  return createPeerTransport({
    clusterId: config.cluster.clusterId,
    nodeId: config.cluster.nodeId,
    host: config.host,
    port: raftConfig.peerPort,
    peers: Object.fromEntries(
      seeds.filter((m) => m.name !== config.cluster.nodeId).map((m) => [m.name, m.peerAddress]),
    ),
    token: raftConfig.token,
    tls: config.tls && {
      cert: config.tls.certChain,
      key: config.tls.privateKey,
      ...(config.tls.clientCa ? { ca: config.tls.clientCa } : {}),
    },
    log: (line) => log.warn(line),
  });
}

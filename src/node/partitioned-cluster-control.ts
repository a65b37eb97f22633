import { ID_PATTERN } from "../cluster/gossip/node-state.ts";
import type { MetaGroup } from "../cluster/meta/meta-group.ts";
import { changeNodes, type NodeChange, type StillCounted } from "../cluster/meta/node-changes.ts";
import type { NodeId } from "../cluster/raft/types.ts";
import {
  decodeStatusRequest,
  encodeMemberStatus,
  MEMBER_STATUS_METHOD,
} from "../cluster/replication/cluster-rpc-format.ts";
import { clusterStatus, ownStatus, type StatusView } from "../cluster/replication/cluster-status.ts";
import type { PeerRpc } from "../cluster/replication/peer-rpc.ts";
import { parsePeerAddress } from "../cluster/transport/peer-address.ts";
import { HomeKvError } from "../errors.ts";
import type { ClusterControl } from "../server/cluster-control.ts";

/** How long a status round waits for each node's answer. */
const STATUS_TIMEOUT_MS = 1_000;
/** How long a node change waits for the meta group's leader. */
const CHANGE_TIMEOUT_MS = 5_000;

export interface PartitionedClusterView {
  clusterId: string;
  /** This node's Raft id. */
  selfId: NodeId;
  meta: MetaGroup;
  rpc: PeerRpc;
  /** A node's name from its Raft id (the meta group's nodes). */
  nameOf(id: NodeId): string | undefined;
  /** Which group still counts a removed node of this name (node-changes.ts). */
  stillCounted: StillCounted;
  grpcAddress(): string;
}

/**
 * The cluster RPCs of a partitioned cluster's node: status is the meta group's (every node of the
 * cluster is a member of it); `add` and `remove` put or remove a node at the meta group's leader,
 * whose placement then moves partitions to it or off it (PartitionReplicas). Leaders follow the
 * placement, so a transfer by hand is refused.
 */
export function partitionedClusterControl(view: PartitionedClusterView): ClusterControl {
  const { meta, rpc } = view;
  const statusView: StatusView = {
    clusterId: view.clusterId,
    selfId: view.selfId,
    driver: meta.driver,
    rpc,
    grpcAddress: view.grpcAddress,
    directory: {
      nameOf: view.nameOf,
      addressOf: (id) => meta.state.nodes.get(view.nameOf(id) ?? "")?.peerAddress,
    },
  };
  rpc.handle(MEMBER_STATUS_METHOD, async (_from, request) => {
    decodeStatusRequest(request);
    return encodeMemberStatus(ownStatus(statusView));
  });
  const status = () => clusterStatus(statusView, STATUS_TIMEOUT_MS);
  const change = async (command: NodeChange) => {
    const outcome = await changeNodes(meta, rpc, view.nameOf, command, CHANGE_TIMEOUT_MS, view.stillCounted);
    if (!outcome.ok) throw new HomeKvError("E_MEMBERSHIP", outcome.reason);
    return status();
  };
  return {
    status,
    add: (nodeId, peerAddress) => {
      if (!ID_PATTERN.test(nodeId))
        throw new HomeKvError(
          "E_INVALID",
          `node id ${JSON.stringify(nodeId)}: letters, digits, '.', '_' and '-', 64 at most`,
        );
      return change({ type: "putNode", node: { name: nodeId, peerAddress: parsePeerAddress(peerAddress).text } });
    },
    remove: (nodeId) => change({ type: "removeNode", name: nodeId }),
    transferLeader: () =>
      Promise.reject(
        new HomeKvError(
          "E_CONFIG",
          "a partitioned cluster's leaders follow the placement (homekv ring shows it): they are not moved by hand",
        ),
      ),
  };
}

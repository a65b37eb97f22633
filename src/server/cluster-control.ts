import { HomeKvError } from "../errors.ts";
import type { ClusterStatusResponse } from "../gen/homekv_service.ts";

/**
 * What the cluster RPCs (ClusterStatus, ClusterAdd, ClusterRemove, ClusterTransferLeader) ask of the
 * node: a replicated member answers for its Raft group, a server of one for itself alone.
 */
export interface ClusterControl {
  status(): Promise<ClusterStatusResponse>;
  add(nodeId: string, peerAddress: string): Promise<ClusterStatusResponse>;
  remove(nodeId: string): Promise<ClusterStatusResponse>;
  transferLeader(nodeId: string): Promise<ClusterStatusResponse>;
}

/** A server that is not replicated: it is the whole cluster, its own leader, and refuses changes. */
export function soloClusterControl(
  self: { clusterId: string; nodeId: string; grpcAddress: () => string },
  revision: () => number,
): ClusterControl {
  const status = async (): Promise<ClusterStatusResponse> => ({
    clusterId: self.clusterId,
    leader: self.nodeId,
    members: [
      {
        nodeId: self.nodeId,
        peerAddress: "",
        grpcAddress: self.grpcAddress(),
        role: "leader",
        voter: true,
        term: 0,
        commitIndex: revision(),
        appliedIndex: revision(),
        lag: 0,
        isSelf: true,
      },
    ],
  });
  const refuse = () =>
    Promise.reject(
      new HomeKvError(
        "E_CONFIG",
        "this server is not a member of a replicated cluster (start it with --initial-cluster or --bootstrap-expect)",
      ),
    );
  return { status, add: refuse, remove: refuse, transferLeader: refuse };
}

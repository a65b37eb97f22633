import { type Placement, shares } from "../cluster/ring/placement.ts";
import { HomeKvError } from "../errors.ts";
import type { RingResponse } from "../gen/homekv_service.ts";

/** What the Ring RPC shows of a partitioned node: each partition's replicas, the first one the placement's choice of leader, and who leads. */
export interface RingView {
  partitions: number;
  replicas: number;
  placement: Placement;
  /** Partition → its leader's name, for the partitions this node holds a replica of ("" while none leads). */
  leaders: Map<number, string>;
}

/** The Ring RPC's answer from a partitioned node's view; `self` is that node, `clusterId` its cluster. */
export function ringResponse(view: RingView, self: { clusterId: string; nodeId: string }): RingResponse {
  // Until the meta group has founded the cluster no node knows where anything is.
  if (view.placement.length !== view.partitions)
    throw new HomeKvError("E_UNAVAILABLE", "the placement is not known yet: the cluster is being founded, try again");
  const holders = [...new Set(view.placement.flat())];
  return {
    clusterId: self.clusterId,
    nodeId: self.nodeId,
    replication: view.replicas,
    partitions: view.placement.map((replicas, partition) => ({
      partition,
      replicas: [...replicas],
      local: view.leaders.has(partition),
      leader: view.leaders.get(partition) ?? "",
    })),
    shares: [...shares(view.placement, holders)].map(([nodeId, share]) => ({
      nodeId,
      replicas: share.replicas,
      preferredLeaders: share.leaders,
    })),
  };
}

/** What a server that is not partitioned answers the Ring RPC with. */
export function notPartitioned(): HomeKvError {
  return new HomeKvError(
    "E_CONFIG",
    "this server is not partitioned (a single server, or one Raft group: --partitions 1): the ring is for a cluster started with --partitions P (P above 1)",
  );
}

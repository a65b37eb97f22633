import type { GossipCounters, Member as GossipMember, MemberStatus } from "../cluster/gossip/index.ts";
import { Member_Status, type MembersResponse } from "../gen/homekv_service.ts";

/** Who is in the cluster, as this node sees it (src/cluster/membership.ts, or a node alone). */
export interface MembershipView {
  readonly clusterId: string;
  /** Timestamps on the `performance.now()` clock. */
  members(): GossipMember[];
  /** Gossip traffic; absent for a node alone. */
  counters?(): GossipCounters;
}

const STATUS: Readonly<Record<MemberStatus, Member_Status>> = {
  alive: Member_Status.ALIVE,
  suspect: Member_Status.SUSPECT,
  dead: Member_Status.DEAD,
  left: Member_Status.LEFT,
};

export function membersResponse(view: MembershipView, nowMs: number): MembersResponse {
  return {
    clusterId: view.clusterId,
    members: view.members().map((member) => ({
      nodeId: member.nodeId,
      grpcAddress: member.grpcAddress,
      gossipAddress: member.gossipAddress,
      status: STATUS[member.status],
      phi: Number.isFinite(member.phi) ? member.phi : Number.MAX_VALUE,
      heartbeat: member.heartbeat,
      generation: member.generation,
      lastSeenMsAgo: member.isSelf ? 0 : Math.max(0, Math.round(nowMs - member.lastSeenMs)),
      isSelf: member.isSelf,
      metadata: member.metadata,
    })),
  };
}

/** A server without gossip: a cluster of one, itself alive. */
export function soloView(clusterId: string, nodeId: string, grpcAddress: string, startedAtMs: number): MembershipView {
  return {
    clusterId,
    members: () => [
      {
        nodeId,
        grpcAddress,
        gossipAddress: "",
        status: "alive",
        phi: 0,
        heartbeat: 0,
        generation: startedAtMs,
        lastSeenMs: 0,
        isSelf: true,
        metadata: {},
      },
    ],
  };
}

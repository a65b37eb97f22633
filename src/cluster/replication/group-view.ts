import type { NodeId } from "../raft/types.ts";
import type { MemberDirectory } from "./member-directory.ts";
import type { PeerRpc } from "./peer-rpc.ts";
import type { RaftDriver } from "./raft-driver.ts";

/** What the cluster operations see of one member of a Raft group, and how they reach the others. */
export interface GroupView {
  readonly clusterId: string;
  /** This member's name and Raft id. */
  readonly self: string;
  readonly selfId: NodeId;
  readonly driver: Pick<
    RaftDriver<unknown>,
    "groupStatus" | "proposeConfChange" | "transferLeadership" | "leads" | "appliedIndex"
  >;
  readonly directory: MemberDirectory;
  readonly rpc: Pick<PeerRpc, "call" | "handle">;
  /** Where this member serves clients ("" until its gRPC server is bound). */
  grpcAddress(): string;
  /** The group's Raft tick: how often to look again at what the group reaches by itself. */
  readonly tickMs: number;
  readonly log: { info(line: string): void; warn(line: string): void };
}

/** `id`'s name, or `#id` for a member the directory cannot name (added by a version without names). */
export function nameOf(view: { readonly directory: Pick<MemberDirectory, "nameOf"> }, id: NodeId): string {
  return view.directory.nameOf(id) ?? `#${id}`;
}

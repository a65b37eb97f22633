import type { ClusterMember, ClusterStatusResponse } from "../../gen/homekv_service.ts";
import type { NodeId } from "../raft/types.ts";
import {
  decodeMemberStatus,
  encodeStatusRequest,
  MEMBER_STATUS_METHOD,
  type MemberStatus,
} from "./cluster-rpc-format.ts";
import { type GroupView, nameOf } from "./group-view.ts";

/** What a status round needs of a group's view: its members are named by the directory. */
export type StatusView = Pick<GroupView, "clusterId" | "selfId" | "driver" | "rpc" | "grpcAddress"> & {
  readonly directory: Pick<GroupView["directory"], "nameOf" | "addressOf">;
};

/** What this member says of itself to the others (cluster.member-status). */
export function ownStatus(view: StatusView): MemberStatus {
  const { status } = view.driver.groupStatus();
  return {
    role: status.role,
    term: status.term,
    leader: status.leader,
    commit: status.commit,
    applied: status.applied,
    lastIndex: status.lastIndex,
    grpcAddress: view.grpcAddress(),
    progress: new Map([...status.progress].map(([id, p]) => [id, p.match])),
  };
}

/** Asks `name` what it says of itself; undefined when it does not answer within `timeoutMs`. */
export async function askStatus(view: StatusView, name: string, timeoutMs: number): Promise<MemberStatus | undefined> {
  try {
    return decodeMemberStatus(await view.rpc.call(name, MEMBER_STATUS_METHOD, encodeStatusRequest(), timeoutMs));
  } catch {
    return undefined;
  }
}

/**
 * The group as this member knows it: every member in its configuration (and itself, "joining",
 * while it waits to be added), each with what it says of itself over peer RPC (asked all at once;
 * one that does not answer within `timeoutMs` is "unreachable"), and its lag as the leader sees it
 * (the leader's last index less the leader's match index of it).
 */
export async function clusterStatus(view: StatusView, timeoutMs: number): Promise<ClusterStatusResponse> {
  const { conf } = view.driver.groupStatus();
  const own = ownStatus(view);
  const ids = [...new Set([...conf.voters, ...conf.learners, view.selfId])].sort((a, b) => a - b);
  const answers = new Map<NodeId, MemberStatus | undefined>(
    await Promise.all(
      ids.map(
        async (id) =>
          [id, id === view.selfId ? own : await askStatus(view, nameOf(view, id), timeoutMs)] as [
            NodeId,
            MemberStatus | undefined,
          ],
      ),
    ),
  );
  const leaderStatus = own.leader === 0 ? undefined : answers.get(own.leader);
  const lag = (id: NodeId) => {
    if (leaderStatus === undefined) return 0;
    const match = id === own.leader ? leaderStatus.lastIndex : (leaderStatus.progress.get(id) ?? 0);
    return Math.max(0, leaderStatus.lastIndex - match);
  };
  const member = (id: NodeId): ClusterMember => {
    const said = answers.get(id);
    const voter = conf.voters.includes(id);
    return {
      nodeId: nameOf(view, id),
      peerAddress: view.directory.addressOf(id) ?? "",
      grpcAddress: said?.grpcAddress ?? "",
      role: roleOf(said, voter, conf.learners.includes(id)),
      voter,
      term: said?.term ?? 0,
      commitIndex: said?.commit ?? 0,
      appliedIndex: said?.applied ?? 0,
      lag: lag(id),
      isSelf: id === view.selfId,
    };
  };
  return {
    clusterId: view.clusterId,
    leader: own.leader === 0 ? "" : nameOf(view, own.leader),
    members: ids.map(member),
  };
}

function roleOf(said: MemberStatus | undefined, voter: boolean, learner: boolean): string {
  if (said === undefined) return "unreachable";
  if (learner) return "learner";
  if (!voter) return "joining";
  return said.role === "preCandidate" ? "candidate" : said.role;
}

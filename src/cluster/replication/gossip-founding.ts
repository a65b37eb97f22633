import { createHash } from "node:crypto";
import type { MemberStatus } from "../gossip/gossiper.ts";
import type { MemberAddress } from "../raft/types.ts";

/**
 * Zero-config founding (`--bootstrap-expect N`, Consul's bootstrap_expect): what a server decides
 * from what gossip shows it. Each server publishes, in its gossip metadata, where its peers reach
 * it, the N it was started with, and, once it is in a formed group, that it is a member. Pure: the
 * caller feeds it gossip's current view and acts on the answer.
 *
 *   n1 expect=3  n2 expect=3              → wait (2 of 3)
 *   n1 expect=3  n2 expect=3  n3 expect=3 → found with n1, n2, n3 (on each of the three)
 *   n1 raft=member founders=h(n1,n2,n3), n2 and n3 expect=3
 *                                         → n2 and n3 found too: the same group, the same entries
 *   n1 raft=member … n4 expect=3          → join (n4 asks a member to add it)
 *   n1..n4 expect=3, no member yet        → join (more than 3: n4 would not know which 3 founded)
 *
 * These keys travel in gossip datagrams: frozen.
 */
export const KEY_PEER_ADDRESS = "peer";
export const KEY_BOOTSTRAP_EXPECT = "expect";
export const KEY_RAFT = "raft";
/** Published by a founder: a hash of the founders' names, so that a slower founder sees it is one. */
export const KEY_FOUNDERS = "founders";
/** KEY_RAFT's value on a server that is a voter or learner of a formed group. */
export const RAFT_MEMBER = "member";

/** What founding reads of one server in gossip's view (this server included). */
export interface GossipServer {
  nodeId: string;
  status: MemberStatus;
  metadata: Readonly<Record<string, string>>;
}

export type FoundingDecision =
  | { kind: "wait"; why: string }
  | { kind: "found"; founders: MemberAddress[] }
  | { kind: "join"; why: string };

export interface FoundingView {
  decision: FoundingDecision;
  /** Servers started with another --bootstrap-expect: never counted, and worth a warning. */
  mismatched: string[];
}

/** The founding metadata a server publishes. */
export function foundingMetadata(peerAddress: string, expect: number): Record<string, string> {
  return { [KEY_PEER_ADDRESS]: peerAddress, [KEY_BOOTSTRAP_EXPECT]: String(expect) };
}

/** The value of KEY_FOUNDERS for these founders: the same whatever their order. */
export function foundersDigest(names: readonly string[]): string {
  return createHash("sha256")
    .update([...names].sort().join(","))
    .digest("hex")
    .slice(0, 16);
}

/** The members of a formed group that gossip shows alive, with their peer addresses. */
export function groupMembers(servers: readonly GossipServer[], self: string): MemberAddress[] {
  return reachable(servers)
    .filter((server) => server.nodeId !== self && server.metadata[KEY_RAFT] === RAFT_MEMBER)
    .map(toAddress);
}

export function decideFounding(servers: readonly GossipServer[], self: string, expect: number): FoundingView {
  const live = reachable(servers);
  const mismatched = live
    .filter((server) => {
      const theirs = server.metadata[KEY_BOOTSTRAP_EXPECT];
      return theirs !== undefined && theirs !== String(expect);
    })
    .map((server) => server.nodeId);
  const same = live.filter((server) => server.metadata[KEY_BOOTSTRAP_EXPECT] === String(expect));
  const members = live.filter((server) => server.nodeId !== self && server.metadata[KEY_RAFT] === RAFT_MEMBER);
  // Founders of the very group these members are in (a slower founder) found it too: their
  // founding entries are the same. Anyone else joins the group that is formed.
  const digest = foundersDigest(same.map((server) => server.nodeId));
  const ownGroup = same.length === expect && members.every((member) => member.metadata[KEY_FOUNDERS] === digest);
  if (members.length > 0 && !ownGroup)
    return { decision: { kind: "join", why: "a group is formed already" }, mismatched };
  if (!same.some((server) => server.nodeId === self))
    return { decision: { kind: "wait", why: "gossip does not show this server yet" }, mismatched };
  if (same.length < expect)
    return {
      decision: { kind: "wait", why: `${same.length} of ${expect} servers seen (${names(same)})` },
      mismatched,
    };
  if (same.length > expect)
    return {
      decision: { kind: "join", why: `${same.length} servers expect ${expect} (${names(same)}): more than founders` },
      mismatched,
    };
  return { decision: { kind: "found", founders: same.map(toAddress) }, mismatched };
}

/** Alive or suspect, and publishing a peer address: a server that can take part. */
function reachable(servers: readonly GossipServer[]): GossipServer[] {
  return servers.filter(
    (server) =>
      (server.status === "alive" || server.status === "suspect") && server.metadata[KEY_PEER_ADDRESS] !== undefined,
  );
}

function toAddress(server: GossipServer): MemberAddress {
  return { name: server.nodeId, peerAddress: server.metadata[KEY_PEER_ADDRESS]! };
}

function names(servers: readonly GossipServer[]): string {
  return servers
    .map((server) => server.nodeId)
    .sort()
    .join(", ");
}

import type { Member } from "../cluster/gossip/gossiper.ts";
import type { Membership } from "../cluster/membership.ts";
import type { HardState, MemberAddress } from "../cluster/raft/types.ts";
import type { InitialClusterState } from "../cluster/replication/bootstrap.ts";
import {
  decideFounding,
  foundersDigest,
  groupMembers,
  KEY_FOUNDERS,
  KEY_RAFT,
  RAFT_MEMBER,
} from "../cluster/replication/gossip-founding.ts";
import { assert, HomeKvError } from "../errors.ts";
import type { RaftConfig, ServeConfig } from "./serve-config.ts";
import type { NodeLog } from "./start-node.ts";

/** The part of gossip membership that zero-config founding uses. */
export interface FoundingGossip {
  members(): Member[];
  publish(key: string, value: string): void;
}

/** A server waits this long for the others to show up in gossip, then gives up its start. */
const FOUNDING_WAIT_MS = 15 * 60_000;
/**
 * The same founders must be seen this many rounds in a row: servers gossip at different moments,
 * and a fourth that is just appearing would make some of them count four (and join) while others
 * still count three (and found).
 */
const STABLE_ROUNDS = 3;
/** How long one request to be added waits for the member's answer. */
const ADD_TIMEOUT_MS = 5_000;

/**
 * Waits until gossip settles how this server starts (gossip-founding.ts): founding the group with
 * the founders it names, or joining the group that exists or will. Looks again every `intervalMs`.
 */
export async function awaitFounding(
  gossip: FoundingGossip,
  self: string,
  expect: number,
  intervalMs: number,
  log: NodeLog,
): Promise<{ seeds: MemberAddress[]; initialState: "new" | "existing" }> {
  const warned = new Set<string>();
  let why = "";
  let stable = 0;
  let last = "";
  log.info(`waiting for ${expect} servers with --bootstrap-expect ${expect} to show up in gossip`);
  const roundsMax = Math.ceil(FOUNDING_WAIT_MS / intervalMs);
  for (let round = 0; round < roundsMax; round++) {
    const { decision, mismatched } = decideFounding(gossip.members(), self, expect);
    for (const name of mismatched)
      if (!warned.has(name)) {
        warned.add(name);
        log.warn(`server ${name} was started with another --bootstrap-expect: it is not counted`);
      }
    if (decision.kind === "join") {
      log.info(`joining the cluster as a learner: ${decision.why}`);
      return { seeds: groupMembers(gossip.members(), self), initialState: "existing" };
    }
    if (decision.kind === "found") {
      const names = decision.founders.map((founder) => founder.name).join(", ");
      stable = names === last ? stable + 1 : 1;
      last = names;
      if (stable >= STABLE_ROUNDS) {
        gossip.publish(KEY_FOUNDERS, foundersDigest(decision.founders.map((founder) => founder.name)));
        return { seeds: decision.founders, initialState: "new" };
      }
      why = `${names} seen, waiting until the view is stable`;
    } else {
      stable = 0;
      last = "";
      why = decision.why;
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs));
  }
  throw new HomeKvError(
    "E_UNAVAILABLE",
    `no cluster formed within ${FOUNDING_WAIT_MS / 60_000} minutes of gossip (--bootstrap-expect ${expect}): ${why}`,
  );
}

export interface JoiningMember {
  self: string;
  /** Whether this member is a voter or learner of its group now. */
  isMember(): boolean;
  addPeer(name: string, peerAddress: string): void;
  /** Asks member `to` to add this one; fails (E_NOT_LEADER from all but the leader) or resolves once it did. */
  askToAdd(to: string, timeoutMs: number): Promise<void>;
}

/**
 * Until this member is in its group: every `intervalMs`, asks the group's members that gossip
 * shows (one after the other: only the leader says yes) to add it as a learner; promotion makes it
 * a voter later if the group needs one. Once a member, it says so in gossip (so that servers started
 * later join instead of founding) and stops. `stop` ends it at shutdown.
 */
export function keepJoining(
  gossip: FoundingGossip,
  member: JoiningMember,
  intervalMs: number,
  log: NodeLog,
): { stop(): void } {
  let asking = false;
  let lastRefusal = "";
  const ask = async () => {
    for (const target of groupMembers(gossip.members(), member.self)) {
      member.addPeer(target.name, target.peerAddress);
      try {
        await member.askToAdd(target.name, ADD_TIMEOUT_MS);
        log.info(`${target.name} added this member (${member.self}) to the cluster`);
        return;
      } catch (error) {
        if (!(error instanceof HomeKvError)) throw error;
        // Every member but the leader refuses; say a refusal once, not every round.
        if (error.code !== "E_NOT_LEADER" && error.message !== lastRefusal) {
          lastRefusal = error.message;
          log.warn(`asking ${target.name} to add this member failed: ${error.message}`);
        }
      }
    }
  };
  const timer = setInterval(() => {
    if (member.isMember()) {
      gossip.publish(KEY_RAFT, RAFT_MEMBER);
      clearInterval(timer);
      return;
    }
    if (asking) return;
    asking = true;
    ask()
      .catch((error) => log.error("internal error while asking to join the group:", error))
      .finally(() => {
        asking = false;
      });
  }, intervalMs);
  return { stop: () => clearInterval(timer) };
}

/**
 * The members to start with and whether to found the group: named by --initial-cluster, or found
 * through gossip (--bootstrap-expect) on a first start. A member whose log has a term is past its
 * first start: the log says who the members are.
 */
export async function findGroup(
  config: ServeConfig,
  raftConfig: RaftConfig,
  raftLog: { hardState(): HardState },
  gossip: () => Membership | undefined,
  log: NodeLog,
): Promise<{ seeds: MemberAddress[]; initialState: InitialClusterState }> {
  const { founding } = raftConfig;
  if (founding.kind === "static")
    return {
      seeds: founding.members.map((m) => ({ name: m.name, peerAddress: m.address })),
      initialState: founding.initialState,
    };
  if (raftLog.hardState().term !== 0) return { seeds: [], initialState: "existing" };
  const membership = gossip();
  assert(membership !== undefined && config.cluster.gossip !== undefined, "--bootstrap-expect without gossip");
  return awaitFounding(membership, config.cluster.nodeId, founding.expect, config.cluster.gossip.intervalMs, log);
}

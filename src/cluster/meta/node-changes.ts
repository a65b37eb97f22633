import { HomeKvError } from "../../errors.ts";
import { ByteWriter, readVersioned } from "../../io/format/bytes.ts";
import { realTimers, type Timers } from "../../timers.ts";
import type { NodeId } from "../raft/types.ts";
import type { PeerRpc } from "../replication/peer-rpc.ts";
import { decodeMetaCommand, encodeMetaCommand } from "./meta-format.ts";
import type { MetaGroup } from "./meta-group.ts";
import { atMetaLeader } from "./meta-leader.ts";
import type { MetaCommand, MetaOutcome } from "./meta-state.ts";

/**
 * A node added to or removed from a partitioned cluster (`homekv cluster add/remove`), from any
 * node: proposed at the meta group's leader, whose placement then follows. Frozen format, version 1:
 *
 *   meta.nodes   request: a meta command (putNode or removeNode, meta-format.ts)
 *                answer:  u8 version · u8 ok (1) or refused (0) · string reason when refused
 */
const METHOD = "meta.nodes";
const VERSION = 1;

export type NodeChange = Extract<MetaCommand, { type: "putNode" } | { type: "removeNode" }>;

/**
 * Which group still counts a node of this name that is not one of the cluster's (removed, its
 * replicas still moving away), or undefined.
 */
export type StillCounted = (name: string) => Promise<string | undefined>;

/**
 * Proposes a node change at this node, the meta group's leader. A node of the cluster put again at
 * its address is there already (a retried add, a joiner asking each gossip round); at another
 * address it is refused, as the replicated serve refuses it: a second server started with the same
 * name would otherwise take the node's place. A removed node's name is put again only once no
 * group counts a node of that name any more: a node added under it must not meet its former
 * self's votes and acknowledgements in a group.
 */
async function propose(meta: MetaGroup, change: NodeChange, stillCounted: StillCounted): Promise<MetaOutcome> {
  if (change.type === "putNode") {
    const { name, peerAddress } = change.node;
    const known = meta.state.nodes.get(name);
    if (known?.peerAddress === peerAddress) return { ok: true };
    if (known)
      return {
        ok: false,
        reason: `${name} is a node already, at ${known.peerAddress}: remove it first to give it another address`,
      };
  }
  if (change.type === "putNode" && meta.state.removed.has(change.node.name)) {
    const { name } = change.node;
    const counted = await stillCounted(name);
    if (counted !== undefined)
      return {
        ok: false,
        reason: `${name} was removed, and ${counted} still counts it (its replicas are moving away): add it again once the moves are done`,
      };
  }
  return meta.propose(change);
}

/** Answers the other nodes' node changes from this node's replica of the meta group (its leader's). */
export function serveNodeChanges(rpc: PeerRpc, meta: MetaGroup, stillCounted: StillCounted): void {
  rpc.handle(METHOD, async (_from, request) => {
    const command = decodeMetaCommand(request);
    if (command.type !== "putNode" && command.type !== "removeNode")
      throw new HomeKvError("E_INVALID", `a node change of type ${command.type}`);
    // Only the leader decides: a follower's state may not have applied a removal yet.
    if (!meta.driver.leads) throw new HomeKvError("E_NOT_LEADER", "this node does not lead the meta group");
    const outcome = await propose(meta, command, stillCounted);
    const w = new ByteWriter(32).u8(VERSION).u8(outcome.ok ? 1 : 0);
    if (!outcome.ok) w.string(outcome.reason);
    return w.written().slice();
  });
}

/** Asks node `to`, which must lead the meta group (E_NOT_LEADER elsewhere), to make `change`; a refusal is an E_MEMBERSHIP naming its reason. */
export async function askNodeChange(rpc: PeerRpc, to: string, change: NodeChange, timeoutMs: number): Promise<void> {
  const outcome = readOutcome(await rpc.call(to, METHOD, encodeMetaCommand(change), timeoutMs));
  if (!outcome.ok) throw new HomeKvError("E_MEMBERSHIP", outcome.reason);
}

function readOutcome(answer: Uint8Array): MetaOutcome {
  return readVersioned(answer, VERSION, "a node change's answer", (r) =>
    r.u8() === 1 ? { ok: true as const } : { ok: false as const, reason: r.string() },
  );
}

/** Proposes `change` at the meta group's leader; what applying it did (a refusal names its reason). */
export function changeNodes(
  meta: MetaGroup,
  rpc: PeerRpc,
  nameOf: (id: NodeId) => string | undefined,
  change: NodeChange,
  timeoutMs: number,
  stillCounted: StillCounted,
  timers: Timers = realTimers,
): Promise<MetaOutcome> {
  return atMetaLeader(
    meta,
    nameOf,
    timers,
    timers.now() + timeoutMs,
    () => propose(meta, change, stillCounted),
    async (leader, attemptMs) => readOutcome(await rpc.call(leader, METHOD, encodeMetaCommand(change), attemptMs)),
  );
}

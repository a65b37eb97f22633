import { HomeKvError } from "../../errors.ts";
import { ByteWriter, readVersioned } from "../../io/format/bytes.ts";
import { realTimers } from "../../timers.ts";
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

/** Answers the other nodes' node changes from this node's replica of the meta group (its leader's). */
export function serveNodeChanges(rpc: PeerRpc, meta: MetaGroup): void {
  rpc.handle(METHOD, async (_from, request) => {
    const command = decodeMetaCommand(request);
    if (command.type !== "putNode" && command.type !== "removeNode")
      throw new HomeKvError("E_INVALID", `a node change of type ${command.type}`);
    const outcome = await meta.propose(command);
    const w = new ByteWriter(32).u8(VERSION).u8(outcome.ok ? 1 : 0);
    if (!outcome.ok) w.string(outcome.reason);
    return w.written().slice();
  });
}

/** Proposes `change` at the meta group's leader; what applying it did (a refusal names its reason). */
export function changeNodes(
  meta: MetaGroup,
  rpc: PeerRpc,
  nameOf: (id: NodeId) => string | undefined,
  change: NodeChange,
  timeoutMs: number,
): Promise<MetaOutcome> {
  return atMetaLeader(
    meta,
    nameOf,
    realTimers,
    realTimers.now() + timeoutMs,
    () => meta.propose(change),
    async (leader, attemptMs) => {
      const answer = await rpc.call(leader, METHOD, encodeMetaCommand(change), attemptMs);
      return readVersioned(answer, VERSION, "a node change's answer", (r) =>
        r.u8() === 1 ? { ok: true as const } : { ok: false as const, reason: r.string() },
      );
    },
  );
}

import { assert } from "../../errors.ts";
import { isMember } from "../raft/configuration.ts";
import type { ConfChange, ConfState, NodeId } from "../raft/types.ts";

/** What the leader of a partition's group knows when it plans the next step of a move. */
export interface GroupState {
  readonly conf: ConfState;
  /**
   * The index of the newest configuration change in the leader's log (default 0): a learner is
   * promoted only once its log holds it, its own addition, so that it counts itself a member when
   * it becomes a voter (a partitioned node's replicas vote only then: RaftOptions.votesOnlyAsMember).
   */
  readonly confIndex?: number;
  readonly leader: NodeId;
  readonly lastIndex: number;
  /** How far each other member's log matches the leader's (the leader's progress). */
  readonly match: ReadonlyMap<NodeId, number>;
  /**
   * The members known to be up: heard from within an election timeout (Raft's CheckQuorum), or
   * alive to the cluster's failure detector. A match is only what a member had when last heard
   * from: one that stopped while caught up looks caught up for as long as the log stands still.
   */
  readonly active: ReadonlySet<NodeId>;
}

/** The next thing the leader does to bring its group to the placement's replicas. */
export type MoveStep =
  | { readonly kind: "change"; readonly change: ConfChange }
  | { readonly kind: "transfer-leader"; readonly to: NodeId }
  | { readonly kind: "wait"; readonly reason: string }
  | { readonly kind: "done" };

/**
 * The next step of moving a group's voters to `target`, one server at a time, so that the group
 * keeps its quorum and its fault tolerance throughout:
 *
 *   voters a b c, target b c d:   add d as a learner → wait until d has caught up → promote d
 *                                 (4 voters) → a leads? hand leadership to a caught-up target
 *                                 voter → remove a (b c d)
 *
 * - A node joins as a learner and votes only once it is up and its log is within
 *   `caughtUpEntriesMax` of the leader's: a lagging voter would count in the quorum while unable
 *   to acknowledge anything. "Caught up" below always means up as well. A learner is promoted
 *   only once its log also holds the newest configuration change (its own addition): in a short
 *   log, one that holds nothing is within the bound (the partitioned simulation saw two such
 *   voters, one whose node never started the replica, leave a group without a quorum).
 * - A voter leaves only after every target node votes, so the group is never smaller than the
 *   smaller of where it started and where it goes; one that is down leaves first, then the least
 *   caught up.
 * - A removal waits while the voters that stay would not have a caught-up majority: it would
 *   stop commits until a lagging one caught up.
 * - The leader never removes itself: it hands leadership to a caught-up target voter first, the
 *   lowest-numbered, so that the heir stays the same from one call to the next.
 * - A learner the target no longer wants (a move called off) is removed first.
 *
 * Call it again after each step has been applied; it returns "done" when the voters are the target
 * and no learner is left.
 */
export function nextMoveStep(group: GroupState, target: readonly NodeId[], caughtUpEntriesMax: number): MoveStep {
  assert(target.length > 0, "a group needs at least one target voter");
  const { conf, leader, lastIndex, match, active } = group;
  const wanted = new Set(target);
  const matchOf = (node: NodeId) => (node === leader ? lastIndex : (match.get(node) ?? 0));
  const isUp = (node: NodeId) => node === leader || active.has(node);
  const caughtUp = (node: NodeId) => isUp(node) && matchOf(node) >= lastIndex - caughtUpEntriesMax;

  const stray = conf.learners.find((node) => !wanted.has(node));
  if (stray !== undefined) return change("remove", stray);
  const learner = conf.learners.find((node) => wanted.has(node));
  if (learner !== undefined) {
    if (!caughtUp(learner) || matchOf(learner) < (group.confIndex ?? 0))
      return { kind: "wait", reason: `learner ${learner} is catching up` };
    return change("addVoter", learner);
  }
  const missing = target.find((node) => !isMember(conf, node));
  if (missing !== undefined) return change("addLearner", missing);

  const leaving = conf.voters.filter((node) => !wanted.has(node));
  if (leaving.length === 0) return { kind: "done" };
  const others = leaving.filter((node) => node !== leader);
  if (others.length === 0) {
    // The same heir every time while it stays caught up: a leader asked to hand over to another
    // node mid-transfer tells both to campaign, and their split vote costs whole election timeouts.
    const heir = [...target].sort((a, b) => a - b).find(caughtUp);
    if (heir === undefined) return { kind: "wait", reason: "no target voter has caught up to take the lead" };
    return { kind: "transfer-leader", to: heir };
  }
  const node = others.sort(
    (a, b) => Number(isUp(a)) - Number(isUp(b)) || matchOf(a) - matchOf(b) || a - b,
  )[0] as NodeId;
  const staying = conf.voters.filter((voter) => voter !== node);
  if (staying.filter(caughtUp).length * 2 <= staying.length)
    return { kind: "wait", reason: `removing ${node} would leave no caught-up majority` };
  return change("remove", node);
}

function change(type: ConfChange["type"], node: NodeId): MoveStep {
  return { kind: "change", change: { type, node } };
}

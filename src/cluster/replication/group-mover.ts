import type { NodeId } from "../raft/types.ts";
import { type GroupState, type MoveStep, nextMoveStep } from "../ring/replica-move.ts";
import type { RaftDriver } from "./raft-driver.ts";

/**
 * A learner whose log is this close to its leader's may vote: promoted further behind, it would
 * count in the quorum while unable to acknowledge what the others commit.
 */
const CAUGHT_UP_ENTRIES = 64;

/** What the mover uses of a group's driver. */
export type MovableGroup = Pick<
  RaftDriver<unknown>,
  "leads" | "groupStatus" | "transferLeadership" | "proposeConfChange"
>;

/** What a group's leader knows of it, as the planner (nextMoveStep) reads it. */
export function groupState(driver: MovableGroup, isUp: (id: NodeId) => boolean): GroupState {
  const { status, conf, confIndex } = driver.groupStatus();
  return {
    conf,
    confIndex,
    leader: status.id,
    lastIndex: status.lastIndex,
    match: new Map([...status.progress].map(([id, progress]) => [id, progress.match])),
    active: new Set([...conf.voters, ...conf.learners].filter((id) => id !== status.id && isUp(id))),
  };
}

/**
 * Brings the groups this node leads to their target voters, one step per group at a time
 * (replica-move.ts: learner → caught up → voter, a hand-over before the leader leaves, then the
 * removals): `step` is called on a timer with the groups and their targets; a group whose last
 * step is still in flight is skipped, and a step refused (an earlier change not yet committed, the
 * leadership lost) is planned again next time from what the group then is.
 */
export class GroupMover {
  private readonly inFlight = new WeakSet<MovableGroup>();

  constructor(
    private readonly options: {
      /** Whether this node takes member `id` for up (its connection and the failure detector). */
      isUp: (id: NodeId) => boolean;
      onStepFailed?: (step: MoveStep, error: unknown) => void;
    },
  ) {}

  /** Takes the next step of `driver`'s group toward `target` if this node leads it; what it took. */
  step(driver: MovableGroup, target: readonly NodeId[]): MoveStep | undefined {
    if (!driver.leads || this.inFlight.has(driver) || target.length === 0) return undefined;
    const step = nextMoveStep(groupState(driver, this.options.isUp), target, CAUGHT_UP_ENTRIES);
    if (step.kind === "transfer-leader") driver.transferLeadership(step.to);
    else if (step.kind === "change") {
      this.inFlight.add(driver);
      driver
        .proposeConfChange(step.change)
        .catch((error) => this.options.onStepFailed?.(step, error))
        .finally(() => this.inFlight.delete(driver));
    }
    return step;
  }
}

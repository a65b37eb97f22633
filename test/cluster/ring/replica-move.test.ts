import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import type { NodeId } from "../../../src/cluster/raft/types.ts";
import { type GroupState, type MoveStep, nextMoveStep } from "../../../src/cluster/ring/replica-move.ts";

const CAUGHT_UP = 4;

/** A group as its leader sees it, changed by the steps it takes: an idealised Raft group, one round per step. */
class ModelGroup {
  voters: NodeId[];
  learners: NodeId[] = [];
  leader: NodeId;
  lastIndex = 100;
  readonly match = new Map<NodeId, number>();

  constructor(voters: readonly NodeId[], leader: NodeId) {
    this.voters = [...voters];
    this.leader = leader;
    for (const voter of voters) this.match.set(voter, this.lastIndex);
  }

  state(): GroupState {
    return {
      conf: { voters: [...this.voters], learners: [...this.learners] },
      leader: this.leader,
      lastIndex: this.lastIndex,
      match: this.match,
    };
  }

  caughtUp(node: NodeId): boolean {
    return node === this.leader || (this.match.get(node) ?? 0) >= this.lastIndex - CAUGHT_UP;
  }

  /** Applies a step the way a correct executor would, checking that it is one a leader may take. */
  apply(step: MoveStep): void {
    if (step.kind === "transfer-leader") {
      expect(this.voters).toContain(step.to);
      expect(this.caughtUp(step.to)).toBe(true);
      this.leader = step.to;
    } else if (step.kind === "change") {
      const { type, node } = step.change;
      if (type === "addLearner") {
        expect(this.voters.includes(node) || this.learners.includes(node)).toBe(false);
        this.learners.push(node);
        this.match.set(node, 0);
      } else if (type === "addVoter") {
        expect(this.learners).toContain(node);
        expect(this.caughtUp(node)).toBe(true);
        this.learners = this.learners.filter((learner) => learner !== node);
        this.voters.push(node);
      } else {
        expect(node).not.toBe(this.leader);
        const wasVoter = this.voters.includes(node);
        this.voters = this.voters.filter((voter) => voter !== node);
        this.learners = this.learners.filter((learner) => learner !== node);
        // The voters left can still commit: a caught-up majority of them.
        if (wasVoter)
          expect(this.voters.filter((voter) => this.caughtUp(voter)).length * 2).toBeGreaterThan(this.voters.length);
      }
    }
  }

  /** A round of replication: the log grows, and each live member gains up to `speed` entries on it. */
  replicate(isLive: (node: NodeId) => boolean, speed: (node: NodeId) => number): void {
    this.lastIndex += 1;
    for (const node of [...this.voters, ...this.learners]) {
      if (node === this.leader || !isLive(node)) continue;
      this.match.set(node, Math.min(this.lastIndex, (this.match.get(node) ?? 0) + speed(node)));
    }
  }
}

/** Runs the planner to its end (or `rounds`), returning the steps taken. */
function drive(group: ModelGroup, target: readonly NodeId[], rounds: number, isLive = (_: NodeId) => true): MoveStep[] {
  const steps: MoveStep[] = [];
  for (let round = 0; round < rounds; round += 1) {
    const step = nextMoveStep(group.state(), target, CAUGHT_UP);
    steps.push(step);
    if (step.kind === "done") break;
    group.apply(step);
    group.replicate(isLive, () => 30);
  }
  return steps;
}

const describeStep = (step: MoveStep) =>
  step.kind === "change"
    ? `${step.change.type} ${step.change.node}`
    : step.kind === "transfer-leader"
      ? `transfer to ${step.to}`
      : step.kind;

describe("nextMoveStep", () => {
  test("the worked example: a b c → b c d while a leads: learner, wait, promote, hand over, remove", () => {
    const group = new ModelGroup([1, 2, 3], 1);
    const steps = drive(group, [2, 3, 4], 20).map(describeStep);
    expect(steps).toEqual(["addLearner 4", "wait", "wait", "wait", "addVoter 4", "transfer to 2", "remove 1", "done"]);
    expect(group.voters.sort()).toEqual([2, 3, 4]);
  });

  test("a removal waits while the voters that stay would have no caught-up majority", () => {
    // Voters 1 2 3 4, 4 far behind; removing 3 would leave 1 2 4 with only 1 and 2 caught up: still a majority.
    const behind = new ModelGroup([1, 2, 3, 4], 1);
    behind.match.set(4, 0);
    expect(nextMoveStep(behind.state(), [1, 2, 4], CAUGHT_UP)).toEqual({
      kind: "change",
      change: { type: "remove", node: 3 },
    });
    // With 2 behind as well, 1 2 4 would have one caught-up voter of three: wait.
    behind.match.set(2, 0);
    expect(nextMoveStep(behind.state(), [1, 2, 4], CAUGHT_UP)).toMatchObject({ kind: "wait" });
  });

  test("a learner the target no longer wants is removed; a target that is the group already is done", () => {
    const group = new ModelGroup([1, 2, 3], 2);
    group.learners.push(5);
    expect(nextMoveStep(group.state(), [1, 2, 3], CAUGHT_UP)).toEqual({
      kind: "change",
      change: { type: "remove", node: 5 },
    });
    group.learners = [];
    expect(nextMoveStep(group.state(), [3, 2, 1], CAUGHT_UP)).toEqual({ kind: "done" });
    expect(() => nextMoveStep(group.state(), [], CAUGHT_UP)).toThrow(/at least one target voter/);
  });
});

describe("nextMoveStep over random groups and targets (fast-check)", () => {
  const members = fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 5 });

  test("every step is one a leader may take; voters never fall below the smaller of start and target; live targets are reached", () => {
    fc.assert(
      fc.property(
        members,
        members,
        fc.nat(),
        fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { maxLength: 3 }),
        fc.infiniteStream(fc.integer({ min: 0, max: 10 })),
        (start, target, leaderPick, dead, speeds) => {
          const leader = start[leaderPick % start.length] as NodeId;
          const group = new ModelGroup(start, leader);
          // The leader and the target's nodes stay up; other nodes may be dead from the start.
          const down = new Set(dead.filter((node) => node !== leader && !target.includes(node)));
          // A group without a live majority commits nothing, moves included.
          fc.pre(start.filter((node) => !down.has(node)).length * 2 > start.length);
          for (const node of down) group.match.set(node, 0);
          const floor = Math.min(start.length, target.length);
          const speed = speeds[Symbol.iterator]();
          for (let round = 0; round < 1_000; round += 1) {
            const step = nextMoveStep(group.state(), target, CAUGHT_UP);
            if (step.kind === "done") {
              expect([...group.voters].sort()).toEqual([...target].sort());
              expect(group.learners).toEqual([]);
              return;
            }
            group.apply(step);
            expect(group.voters.length).toBeGreaterThanOrEqual(floor);
            group.replicate(
              (node) => !down.has(node),
              () => speed.next().value as number,
            );
          }
          throw new Error(`not done after 1,000 rounds: voters ${group.voters}, learners ${group.learners}`);
        },
      ),
      { numRuns: 500 },
    );
  });
});

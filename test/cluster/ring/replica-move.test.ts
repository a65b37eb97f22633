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
  /** Members that are down: their match is what they had when they stopped, not a sign of life. */
  readonly dead = new Set<NodeId>();

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
      active: new Set([...this.voters, ...this.learners].filter((node) => !this.dead.has(node))),
    };
  }

  /** Whether the voters can still commit: a majority of them is up (a lagging live one catches up). */
  available(): boolean {
    return this.voters.filter((voter) => !this.dead.has(voter)).length * 2 > this.voters.length;
  }

  caughtUp(node: NodeId): boolean {
    return node === this.leader || (this.match.get(node) ?? 0) >= this.lastIndex - CAUGHT_UP;
  }

  /** Applies a step the way a correct executor would, checking that it is one a leader may take. */
  apply(step: MoveStep): void {
    if (step.kind === "transfer-leader") {
      expect(this.voters).toContain(step.to);
      // A transfer to a node that is down refuses writes for an election timeout, then fails.
      expect(this.dead.has(step.to)).toBe(false);
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
        const wasAvailable = this.available();
        this.learners = this.learners.filter((learner) => learner !== node);
        this.voters.push(node);
        if (wasAvailable) expect(this.available()).toBe(true);
      } else {
        expect(node).not.toBe(this.leader);
        const wasVoter = this.voters.includes(node);
        const wasAvailable = this.available();
        this.voters = this.voters.filter((voter) => voter !== node);
        this.learners = this.learners.filter((learner) => learner !== node);
        // The voters left can still commit: a caught-up majority of them.
        if (wasVoter)
          expect(this.voters.filter((voter) => this.caughtUp(voter)).length * 2).toBeGreaterThan(this.voters.length);
        // No change turns a group that could commit into one that cannot.
        if (wasAvailable) expect(this.available()).toBe(true);
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

  test("a member that is down counts as caught up for none of promote, hand over or keep: its match is old news", () => {
    // 2 stopped while caught up (an idle group's log does not move on): removing 3 would leave 1 2, one of them up.
    const shrink = new ModelGroup([1, 2, 3], 1);
    shrink.dead.add(2);
    expect(nextMoveStep(shrink.state(), [1, 2], CAUGHT_UP)).toMatchObject({ kind: "wait" });
    // The leader leaves; the lowest-numbered target voter, 2, is down: hand over to 3.
    const handOver = new ModelGroup([1, 2, 3, 4], 1);
    handOver.dead.add(2);
    expect(nextMoveStep(handOver.state(), [2, 3, 4], CAUGHT_UP)).toEqual({ kind: "transfer-leader", to: 3 });
    // 3 is down already; promoting 4, caught up but down too, would leave 2 of 4 voters up.
    const promote = new ModelGroup([1, 2, 3], 1);
    promote.dead.add(3);
    promote.learners.push(4);
    promote.match.set(4, promote.lastIndex);
    promote.dead.add(4);
    expect(nextMoveStep(promote.state(), [1, 2, 4], CAUGHT_UP)).toMatchObject({ kind: "wait" });
    // Of two leaving voters, the one that is down goes first, though its match is the higher.
    const leaving = new ModelGroup([1, 2, 3, 4, 5], 1);
    leaving.dead.add(4);
    leaving.match.set(5, leaving.lastIndex - 2);
    expect(nextMoveStep(leaving.state(), [1, 2, 3], CAUGHT_UP)).toEqual({
      kind: "change",
      change: { type: "remove", node: 4 },
    });
  });

  test("a learner is promoted only once its log holds the newest configuration change (its addition), however short the log", () => {
    // A log of 3 entries: a learner with nothing is within CAUGHT_UP of it, but holds not even its
    // own addition (index 3): as a voter it would count itself no member, and vote for nobody.
    const group = new ModelGroup([1, 2, 3], 1);
    group.lastIndex = 3;
    group.learners.push(4);
    group.match.set(4, 0);
    const state = (match: number) => {
      group.match.set(4, match);
      return { ...group.state(), confIndex: 3 };
    };
    expect(nextMoveStep(state(0), [1, 2, 3, 4], CAUGHT_UP)).toMatchObject({ kind: "wait" });
    expect(nextMoveStep(state(2), [1, 2, 3, 4], CAUGHT_UP)).toMatchObject({ kind: "wait" });
    expect(nextMoveStep(state(3), [1, 2, 3, 4], CAUGHT_UP)).toEqual({
      kind: "change",
      change: { type: "addVoter", node: 4 },
    });
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

/** A group's voters, or a target: 1 to 5 of nodes 1–8. */
const members = fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { minLength: 1, maxLength: 5 });
/** Each round, how many entries a member that is up gains on the leader's log. */
const speeds = fc.infiniteStream(fc.integer({ min: 0, max: 10 }));

describe("nextMoveStep over random groups and targets (fast-check)", () => {
  test("every step is one a leader may take; voters never fall below the smaller of start and target; live targets are reached", () => {
    fc.assert(
      fc.property(
        members,
        members,
        fc.nat(),
        fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { maxLength: 3 }),
        speeds,
        (start, target, leaderPick, dead, speedOf) => {
          const leader = start[leaderPick % start.length] as NodeId;
          const group = new ModelGroup(start, leader);
          // The leader and the target's nodes stay up; other nodes may be dead from the start.
          const down = new Set(dead.filter((node) => node !== leader && !target.includes(node)));
          // A group without a live majority commits nothing, moves included.
          fc.pre(start.filter((node) => !down.has(node)).length * 2 > start.length);
          for (const node of down) group.match.set(node, 0);
          const floor = Math.min(start.length, target.length);
          const speed = speedOf[Symbol.iterator]();
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

  test("no step turns a group that can commit into one that cannot; it stops short only for a target node that is down or a lost majority", () => {
    fc.assert(
      fc.property(
        members,
        members,
        fc.nat(),
        // Node → the round it goes down at, unless it leads then (the model elects no one).
        fc.dictionary(fc.integer({ min: 1, max: 8 }).map(String), fc.integer({ min: 0, max: 60 }), { maxKeys: 3 }),
        speeds,
        (start, target, leaderPick, downAt, speedOf) => {
          const leader = start[leaderPick % start.length] as NodeId;
          const group = new ModelGroup(start, leader);
          const speed = speedOf[Symbol.iterator]();
          for (let round = 0; round < 1_000; round += 1) {
            for (const [node, at] of Object.entries(downAt))
              if (at === round && Number(node) !== group.leader) group.dead.add(Number(node));
            const step = nextMoveStep(group.state(), target, CAUGHT_UP);
            if (step.kind === "done") {
              expect([...group.voters].sort()).toEqual([...target].sort());
              return;
            }
            // A change commits only with a majority of the voters up; the model then waits for nothing.
            if (group.available()) group.apply(step);
            group.replicate(
              (node) => !group.dead.has(node),
              () => speed.next().value as number,
            );
          }
          const targetDown = target.some((node) => group.dead.has(node));
          expect(targetDown || !group.available()).toBe(true);
        },
      ),
      { numRuns: 1_000 },
    );
  });
});

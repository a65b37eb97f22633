import { expect, test } from "bun:test";
import { checkLinearizability } from "../../linearizability/checker.ts";
import { kvModel } from "../../linearizability/kv-model.ts";
import { CALM, forEachSeed, RaftSimulation } from "../raft/simulator.ts";

/**
 * The replica-move planner driving the real Raft core (the deterministic simulator): 5 nodes, 3
 * voters to start, the leader moving the voters to a new random target (1 to 5 of the nodes) each
 * time it reaches one, while clients write and read. Messages take up to 2 ticks and logs are
 * compacted now and then, so learners catch up by log or by snapshot; no node fails. Moves done
 * one server at a time must keep the group able to commit: no run without a leader, no commit
 * stalled, and no hand-over (during which the leader refuses writes), longer than one election
 * timeout.
 */
const SEEDS = 60;
const TICKS = 1_500;
/**
 * One election timeout at most (the core's is 10 to 20 ticks), the bound on a move: a
 * hand-over itself costs a round or two.
 */
const LEADERLESS_TICKS_MAX = 20;
const COMMIT_STALL_TICKS_MAX = 20;

test("moves planned one server at a time keep a leader and a moving commit, and the history linearizable", async () => {
  let moves = 0;
  let leaderless = 0;
  let stall = 0;
  let handOver = 0;
  await forEachSeed("replica moves", SEEDS, async (seed) => {
    const sim = await RaftSimulation.create(
      seed,
      5,
      { ...CALM, delayMaxTicks: 2, compactRate: 0.02 },
      {
        firstVoters: 3,
        moveReplicas: true,
      },
    );
    await sim.run(TICKS);
    expect(sim.movesCompleted).toBeGreaterThanOrEqual(3);
    expect(sim.longestLeaderlessTicks).toBeLessThanOrEqual(LEADERLESS_TICKS_MAX);
    expect(sim.longestCommitStallTicks).toBeLessThanOrEqual(COMMIT_STALL_TICKS_MAX);
    expect(sim.longestHandOverTicks).toBeLessThanOrEqual(LEADERLESS_TICKS_MAX);
    const verdict = checkLinearizability(sim.history, kvModel, { timeoutMs: 5_000 });
    expect(verdict.result).toBe("ok");
    moves += sim.movesCompleted;
    leaderless = Math.max(leaderless, sim.longestLeaderlessTicks);
    stall = Math.max(stall, sim.longestCommitStallTicks);
    handOver = Math.max(handOver, sim.longestHandOverTicks);
  });
  console.log(
    `replica moves: ${SEEDS} seeds, ${moves} targets reached; longest leaderless run ${leaderless} ticks, longest commit stall ${stall} ticks, longest hand-over (writes refused) ${handOver} ticks`,
  );
}, 120_000);

import { expect, test } from "bun:test";
import { checkLinearizability } from "../../linearizability/checker.ts";
import { kvModel } from "../../linearizability/kv-model.ts";
import { forEachSeed, HARSH, RaftSimulation, type SimOptions } from "./simulator.ts";

/**
 * Seeded random runs of whole clusters under HARSH faults (10% loss, 5% duplicates, delays up to
 * 3 ticks and now and then past the election timeout, crashes, restarts from storage, pauses of up
 * to three election timeouts, clocks drifting ±25%, symmetric and one-way partitions that come and
 * go, logs compacted into snapshots at random), with limits of the core drawn from the seed
 * (entries per message, inflight window), with writes, ReadIndex reads and leadership transfers
 * from clients. The simulator checks after every tick: one leader per term, leader completeness,
 * state machine safety, read indexes that cover every acknowledged write, and log matching every 25
 * ticks. Each client history of the replicated key-value state machine is checked for
 * linearizability. Then the faults end and the cluster must elect one leader and commit a new
 * write within a bound. RAFT_SIM_SEEDS=n for a longer soak (scripts/raft-soak.ts).
 */
const FAULT_TICKS = 400;
const LIVENESS_TICKS = 300;
/** With clients quiet, a change still in flight (a leader removing itself) may cost one more election. */
const SETTLE_TICKS = 200;
/** Quiesce: a settled group goes quiet within this many ticks, then stays quiet (not a message) for QUIET_TICKS. */
const QUIESCE_TICKS = 50;
const QUIET_TICKS = 200;
const CHECK_BUDGET_MS = 5_000;

interface Totals {
  seeds: number;
  writes: number;
  reads: number;
  snapshots: number;
  changes: number;
  operations: number;
  quietNodeTicks: number;
  worstElection: number;
}

/** One seed, start to verdict: faults, then the heal, a leader, a write, every member caught up. */
async function runSeed(
  seed: number,
  size: number,
  options: SimOptions,
): Promise<{ sim: RaftSimulation; elected: number; quietNodeTicks: number }> {
  const sim = await RaftSimulation.create(seed, size, HARSH, options);
  await sim.run(FAULT_TICKS);
  await sim.heal();
  const elected = await sim.ticksToStableLeader(LIVENESS_TICKS);
  if (elected === undefined) throw new Error(`no stable leader within ${LIVENESS_TICKS} ticks of the heal`);
  if ((await sim.commitOneWrite(LIVENESS_TICKS)) === undefined)
    throw new Error(`no write committed within ${LIVENESS_TICKS} ticks of a stable leader`);
  if (!(await sim.settles(SETTLE_TICKS)))
    throw new Error(`the members did not all apply the committed log within ${SETTLE_TICKS} ticks`);
  // Counted before the quiet ticks, which would make up most of it.
  const quietNodeTicks = sim.quietNodeTicks;
  if (options.quiesce) await staysQuiet(sim);
  sim.checkLogMatching();
  const verdict = checkLinearizability(sim.history, kvModel, { timeoutMs: CHECK_BUDGET_MS });
  if (verdict.result !== "ok")
    throw new Error(`history not linearizable (${verdict.result}): ${JSON.stringify(verdict).slice(0, 2_000)}`);
  return { sim, elected, quietNodeTicks };
}

/**
 * A settled group with nothing to do quiesces, and then stays so: no member wakes (a wake and the
 * quiesce after it, again and again, would show here) and the leader keeps its term. A node removed
 * from the group may go on campaigning (a host destroys its replica): at most it gets an answer.
 */
async function staysQuiet(sim: RaftSimulation): Promise<void> {
  if ((await sim.quiesces(QUIESCE_TICKS)) === undefined)
    throw new Error(`the settled group did not quiesce within ${QUIESCE_TICKS} ticks`);
  const leader = sim.leaders()[0]!.raft!;
  const { term } = leader;
  const before = sim.groupActivity().sent;
  for (let i = 1; i <= QUIET_TICKS; i++) {
    await sim.step();
    const { sent, awake } = sim.groupActivity();
    if (awake.length > 0 || leader.role !== "leader" || leader.term !== term)
      throw new Error(
        `the quiet group woke ${i} ticks later: members ${awake.join(", ") || "none"} awake, node ${leader.id} ${leader.role} in term ${leader.term} (was leader in ${term}); its members sent ${sent - before} messages`,
      );
  }
}

async function simulate(name: string, seedCount: number, size: number, options: SimOptions): Promise<Totals> {
  const totals = {
    seeds: 0,
    writes: 0,
    reads: 0,
    snapshots: 0,
    changes: 0,
    operations: 0,
    quietNodeTicks: 0,
    worstElection: 0,
  };
  totals.seeds = await forEachSeed(name, seedCount, async (seed) => {
    const { sim, elected, quietNodeTicks } = await runSeed(seed, size, options);
    totals.worstElection = Math.max(totals.worstElection, elected);
    totals.reads += sim.readsServed;
    totals.snapshots += sim.snapshotsInstalled;
    totals.writes += sim.writesAcknowledged;
    totals.changes += sim.confChanges;
    totals.operations += sim.history.length;
    totals.quietNodeTicks += quietNodeTicks;
  });
  console.log(
    `${name}: ${totals.seeds} seeds, ${totals.operations} client operations checked linearizable, ${totals.writes} writes acknowledged, ${totals.reads} reads served, ${totals.snapshots} snapshots installed from a leader, ${totals.changes} membership changes, ${totals.quietNodeTicks} node-ticks quiesced; a stable leader at most ${totals.worstElection} ticks after the heal`,
  );
  return totals;
}

const RUNS: { name: string; seeds: number; size: number; options: SimOptions }[] = [
  { name: "raft, 3 nodes, logs in memory", seeds: 1_200, size: 3, options: {} },
  { name: "raft, 5 nodes, logs in memory", seeds: 600, size: 5, options: {} },
  { name: "raft, 3 nodes, durable logs losing unsynced writes", seeds: 500, size: 3, options: { durable: true } },
  { name: "raft, 5 nodes, durable logs losing unsynced writes", seeds: 250, size: 5, options: { durable: true } },
  {
    name: "raft, 3 of 5 voters to start, members changed at random",
    seeds: 500,
    size: 5,
    options: { firstVoters: 3, changeMembers: true },
  },
  {
    name: "raft, 4 of 6 voters to start, members changed at random, durable",
    seeds: 250,
    size: 6,
    options: { firstVoters: 4, changeMembers: true, durable: true },
  },
  { name: "raft, 3 nodes, idle groups quiesce", seeds: 600, size: 3, options: { quiesce: true } },
  {
    name: "raft, 4 of 6 voters to start, members changed at random, idle groups quiesce, durable",
    seeds: 250,
    size: 6,
    options: { firstVoters: 4, changeMembers: true, quiesce: true, durable: true },
  },
  {
    name: "raft, 3 of 5 voters to start, moved by the replica-move planner",
    seeds: 500,
    size: 5,
    options: { firstVoters: 3, moveReplicas: true },
  },
  {
    name: "raft, 5 of 6 voters to start, members changed at random",
    seeds: 250,
    size: 6,
    options: { firstVoters: 5, changeMembers: true },
  },
];

/**
 * Seeds past CI's that found a bug, replayed every time. 202987: the check of leader completeness
 * took a leader elected late in term 1 (its votes delayed) for a lack of the entry a term-2 leader
 * had committed since; Raft asks it only of entries committed before its term.
 */
const FOUND: { run: string; seed: number }[] = [
  { run: "raft, 5 of 6 voters to start, members changed at random", seed: 202987 },
];

for (const { run: name, seed } of FOUND) {
  const run = RUNS.find((r) => r.name === name)!;
  test(`${name}, seed ${seed}: safe, linearizable and live`, async () => {
    await runSeed(seed, run.size, run.options);
  });
}

for (const run of RUNS) {
  test(`${run.name}: safe and linearizable under faults, live after the heal`, async () => {
    const totals = await simulate(run.name, run.seeds, run.size, run.options);
    // The runs must have exercised what they claim (one replayed seed may well not).
    if (process.env.RAFT_SEED !== undefined) return;
    expect(totals.writes).toBeGreaterThan(totals.seeds);
    expect(totals.reads).toBeGreaterThan(totals.seeds);
    if (run.options.changeMembers || run.options.moveReplicas) expect(totals.changes).toBeGreaterThan(totals.seeds);
    if (run.options.quiesce) expect(totals.quietNodeTicks).toBeGreaterThan(totals.seeds * 10);
    else expect(totals.snapshots).toBeGreaterThan(0);
  }, 300_000);
}

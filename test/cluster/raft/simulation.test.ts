import { expect, test } from "bun:test";
import { forEachSeed, HARSH, RaftSimulation } from "./simulator.ts";

/**
 * Seeded random runs of whole clusters under HARSH faults (10% loss, 5% duplicates, delays up to
 * 3 ticks, crashes, restarts from storage, symmetric and one-way partitions that come and go, logs
 * compacted into snapshots at random) with proposals, ReadIndex reads and leadership transfers. The simulator checks after every tick: one
 * leader per term, leader completeness, state machine safety, reads that see every acknowledged
 * write, and log matching every 25 ticks. Then the faults end and the cluster must elect one
 * leader and commit a new write within a bound. RAFT_SIM_SEEDS=n for a longer soak.
 */
const FAULT_TICKS = 400;
const LIVENESS_TICKS = 300;
/** With clients quiet, a change still in flight (a leader removing itself) may cost one more election. */
const SETTLE_TICKS = 200;

for (const size of [3, 5]) {
  test(`${size} nodes: safe under faults, live after the heal`, () => {
    let reads = 0;
    let writes = 0;
    let worstElection = 0;
    let snapshots = 0;
    const seeds = forEachSeed(`raft ${size} nodes`, size === 3 ? 2_500 : 1_500, (seed) => {
      const sim = new RaftSimulation(seed, size, HARSH);
      sim.run(FAULT_TICKS);
      sim.heal();
      const elected = sim.ticksToStableLeader(LIVENESS_TICKS);
      if (elected === undefined) throw new Error(`no stable leader within ${LIVENESS_TICKS} ticks of the heal`);
      const committed = sim.commitOneWrite(LIVENESS_TICKS);
      if (committed === undefined)
        throw new Error(`no write committed within ${LIVENESS_TICKS} ticks of a stable leader`);
      if (!sim.settles(SETTLE_TICKS))
        throw new Error(`the nodes did not all apply the committed log within ${SETTLE_TICKS} ticks`);
      sim.checkLogMatching();
      worstElection = Math.max(worstElection, elected);
      reads += sim.readsServed;
      snapshots += sim.snapshotsInstalled;
      writes += sim.writesAcknowledged;
    });
    console.log(
      `raft, ${size} nodes: ${seeds} seeds, ${writes} writes acknowledged, ${reads} reads served, ${snapshots} snapshots installed from a leader; a stable leader at most ${worstElection} ticks after the heal`,
    );
    expect(writes).toBeGreaterThan(seeds);
    expect(reads).toBeGreaterThan(seeds);
    expect(snapshots).toBeGreaterThan(0);
  }, 120_000);
}

test("5 nodes, 3 voters to start, members added as learners, promoted and removed at random: safe and live", () => {
  let changes = 0;
  let writes = 0;
  const seeds = forEachSeed("raft membership changes", 1_000, (seed) => {
    const sim = new RaftSimulation(seed, 5, HARSH, { firstVoters: 3, changeMembers: true });
    sim.run(FAULT_TICKS);
    sim.heal();
    if (sim.ticksToStableLeader(LIVENESS_TICKS) === undefined)
      throw new Error(`no stable leader within ${LIVENESS_TICKS} ticks of the heal`);
    if (sim.commitOneWrite(LIVENESS_TICKS) === undefined)
      throw new Error(`no write committed within ${LIVENESS_TICKS} ticks of a stable leader`);
    if (!sim.settles(SETTLE_TICKS))
      throw new Error(`the members did not all apply the committed log within ${SETTLE_TICKS} ticks`);
    sim.checkLogMatching();
    changes += sim.confChanges;
    writes += sim.writesAcknowledged;
  });
  console.log(`raft, membership changes: ${seeds} seeds, ${changes} changes committed, ${writes} writes acknowledged`);
  expect(changes).toBeGreaterThan(seeds);
}, 120_000);

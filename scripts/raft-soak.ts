/**
 * A long soak of the Raft simulation: every scenario of test/cluster/raft/simulation.test.ts (all
 * faults on) over seeds past CI's fixed set, bounded by count. Prints the runner's counts and exits
 * non-zero if any seed fails; the failure names its seed (replay: RAFT_SEED=n bun test test/cluster/raft).
 *
 *   bun scripts/raft-soak.ts [--seeds 20000] [--first 100000]
 *
 * --seeds is the total over the scenarios (shared evenly); --first the first seed.
 */
import { parseArgs } from "node:util";

const SCENARIOS = 7;
const { values } = parseArgs({
  options: { seeds: { type: "string", default: "20000" }, first: { type: "string", default: "100000" } },
});
const total = Number(values.seeds);
const first = Number(values.first);
if (!Number.isSafeInteger(total) || total < SCENARIOS || !Number.isSafeInteger(first) || first < 1) {
  console.error("usage: bun scripts/raft-soak.ts [--seeds N ≥ 7] [--first N ≥ 1]");
  process.exit(2);
}
const perScenario = Math.ceil(total / SCENARIOS);
console.log(`Raft soak: ${perScenario} seeds for each of ${SCENARIOS} scenarios, from seed ${first}`);
const started = performance.now();
const run = Bun.spawnSync([process.execPath, "test", "--timeout", "600000", "test/cluster/raft/simulation.test.ts"], {
  cwd: `${import.meta.dir}/..`,
  env: { ...process.env, RAFT_SIM_SEEDS: String(perScenario), RAFT_SIM_FIRST_SEED: String(first) },
  stdout: "inherit",
  stderr: "inherit",
});
console.log(`Raft soak: ${perScenario * SCENARIOS} seeds in ${((performance.now() - started) / 1000).toFixed(0)} s`);
process.exit(run.exitCode ?? 1);

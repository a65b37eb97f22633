#!/usr/bin/env bun
/**
 * A long run of the deterministic simulation of a partitioned cluster
 * (test/cluster/partitioned-sim/): seeds past CI's, 3 and 4 founding nodes in turn (each run adds
 * a node and removes one), until --seeds are done or --seconds have passed. Prints what the runs
 * exercised; exits 1 at the first failing seed, which it names with the command that replays it
 * exactly.
 *
 *   npm run partitioned:sim -- [--seeds 500] [--seconds 600] [--first 100000] [--founders 3|4]
 *                              [--faults harsh|moderate]
 *   npm run partitioned:sim -- --founders 3 --faults moderate --seed 23       replays one seed
 */
import { FAULT_PROFILES, type FaultProfile } from "../test/cluster/partitioned-sim/partitioned-sim.ts";
import { runSeed, totals } from "../test/cluster/partitioned-sim/run-seed.ts";
import { runSeeds } from "./seed-runs.ts";

await runSeeds({
  title: "partitioned simulation",
  command: "npm run partitioned:sim --",
  sizeOption: "founders",
  sizes: [3, 4],
  variant: { option: "faults", values: Object.keys(FAULT_PROFILES) },
  defaults: { seeds: 500, seconds: 600, first: 100_000 },
  progressEvery: 20,
  run: (seed, founders, faults) => runSeed(seed, founders, { faults: faults as FaultProfile }),
  totals,
  fingerprint: (result) => result.fingerprint,
});

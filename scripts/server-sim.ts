#!/usr/bin/env bun
/**
 * A long run of the deterministic server simulation (test/cluster/replication/sim/): seeds past
 * CI's fixed set, 3- and 5-member clusters in turn, until --seeds are done or --seconds have
 * passed. Prints what the runs exercised; exits 1 at the first failing seed, which it names with
 * the command that replays it exactly.
 *
 *   npm run server:sim -- [--seeds 5000] [--seconds 600] [--first 100000] [--size 3|5]
 *   npm run server:sim -- --size 3 --seed 10        replays one seed
 */
import { runSeed, totals } from "../test/cluster/replication/sim/run-seed.ts";
import { runSeeds } from "./seed-runs.ts";

await runSeeds({
  title: "server simulation",
  command: "npm run server:sim --",
  sizeOption: "size",
  sizes: [3, 5],
  defaults: { seeds: 5_000, seconds: 600, first: 100_000 },
  progressEvery: 100,
  run: (seed, size) => runSeed(seed, size),
  totals,
  fingerprint: (result) => result.fingerprint,
});

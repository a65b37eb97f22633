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
import { parseArgs } from "node:util";
import { runSeed, type SeedResult, totals } from "../test/cluster/replication/sim/run-seed.ts";

const { values } = parseArgs({
  options: {
    seeds: { type: "string", default: "5000" },
    seconds: { type: "string", default: "600" },
    first: { type: "string", default: "100000" },
    size: { type: "string" },
    seed: { type: "string" },
  },
});
const [count, seconds, first] = [Number(values.seeds), Number(values.seconds), Number(values.first)];
const sizes = values.size === undefined ? [3, 5] : [Number(values.size)];
if (
  ![count, first].every((n) => Number.isSafeInteger(n) && n >= 1) ||
  !(seconds > 0) ||
  !sizes.every((s) => s === 3 || s === 5)
) {
  console.error(
    "usage: npm run server:sim -- [--seeds N ≥ 1] [--seconds S > 0] [--first N ≥ 1] [--size 3|5] [--seed N]",
  );
  process.exit(2);
}

const started = performance.now();
const elapsedS = () => (performance.now() - started) / 1_000;
const results: SeedResult[] = [];
const seeds = values.seed === undefined ? Array.from({ length: count }, (_, i) => first + i) : [Number(values.seed)];
let exitCode = 0;
for (const [i, seed] of seeds.entries()) {
  if (elapsedS() >= seconds) break;
  try {
    results.push(await runSeed(seed, sizes[i % sizes.length]!));
  } catch (error) {
    console.error(error instanceof Error ? error.message : error);
    exitCode = 1;
    break;
  }
  if (results.length % 100 === 0) console.log(`${results.length} seeds passed, ${elapsedS().toFixed(0)} s`);
}
console.log(`server simulation: ${JSON.stringify(totals(results))} in ${elapsedS().toFixed(1)} s`);
if (results.length === 1) console.log(results[0]!.fingerprint);
process.exit(exitCode);

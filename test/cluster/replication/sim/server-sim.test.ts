import { expect, test } from "bun:test";
import { runSeed, type SeedResult, totals } from "./run-seed.ts";

/**
 * The deterministic simulation of the replicated server (server-sim.ts): seeded runs of 3 and 5
 * members made of the real replication stack, under crashes, clean stops, pauses, partitions,
 * connection resets and late payloads, with clients issuing Get, Set, Del and Txn (with and
 * without request ids, linearizable and serializable reads) to random members. Each run is checked
 * by sim-checks.ts. SERVER_SIM_SEEDS=n for more seeds per scenario; longer soaks:
 * `npm run server:sim -- --seeds 5000 --seconds 1800`.
 */
const SCENARIOS = [
  { size: 3, seeds: 150 },
  { size: 5, seeds: 50 },
];
/** Seeds of longer runs that found bugs, replayed every time (each fixed, with its own regression test too). */
const FOUND = [
  { size: 3, seed: 10, bug: "a write on a stopped member waited for a leader in a busy loop" },
  {
    size: 3,
    seed: 100096,
    bug: "a restarted member's forwarded writes were answered by its earlier process's entries",
  },
];
const perScenario = (seeds: number) => Number(process.env.SERVER_SIM_SEEDS ?? seeds);

for (const { size, seeds } of SCENARIOS) {
  test(`${size} members: safe, linearizable and live again after the faults, over ${perScenario(seeds)} seeds`, async () => {
    const results: SeedResult[] = [];
    for (let seed = 1; seed <= perScenario(seeds); seed++) results.push(await runSeed(seed, size));
    const sum = totals(results);
    console.log(`server simulation, ${size} members: ${JSON.stringify(sum)}`);
    // The runs must have exercised what they claim.
    for (const what of ["crashes", "stops", "pauses", "partitions", "retries", "duplicates", "unknown"] as const)
      expect({ [what]: sum[what] > 0 }).toEqual({ [what]: true });
  }, 600_000);
}

for (const { size, seed, bug } of FOUND)
  test(`${size} members, seed ${seed}, which found that ${bug}`, async () => {
    await runSeed(seed, size);
  });

test("a seed replays exactly: the same events, deliveries and history", async () => {
  const [first, again] = [await runSeed(7, 3), await runSeed(7, 3)];
  expect(again.fingerprint).toBe(first.fingerprint);
  // A different seed is a different run (the fingerprint does tell runs apart).
  expect((await runSeed(8, 3)).fingerprint).not.toBe(first.fingerprint);
});

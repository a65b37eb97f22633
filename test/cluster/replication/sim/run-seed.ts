import { HARSH, ServerSimulation, type SimFaults } from "./server-sim.ts";
import { checkConverged } from "./sim-checks.ts";

/** Virtual time of one run: faults and clients, then the heal, the final requests. */
export const FAULT_MS = 12_000;
const HEAL_MS = 30_000;
const FINAL_MS = 20_000;

export interface SeedResult {
  seed: number;
  operations: number;
  revision: number;
  counts: ServerSimulation["counts"];
  events: number;
  fingerprint: string;
}

/**
 * One seed, start to verdict: `faultMs` of faults and clients, then the faults end and the cluster
 * must settle, take a write and a linearizable read through every member, and pass every check of
 * sim-checks.ts. Throws with the seed and how to replay it.
 */
export async function runSeed(
  seed: number,
  size: number,
  options: { faults?: SimFaults; faultMs?: number } = {},
): Promise<SeedResult> {
  const sim = new ServerSimulation(seed, size, options.faults ?? HARSH);
  try {
    await sim.run(options.faultMs ?? FAULT_MS);
    await sim.heal(HEAL_MS);
    await sim.finalRequests(FINAL_MS);
    const { operations, revision } = checkConverged(sim);
    return { seed, operations, revision, counts: sim.counts, events: sim.time.fired, fingerprint: sim.fingerprint() };
  } catch (error) {
    throw new Error(
      `server simulation of ${size} members, seed ${seed} (replay: npm run server:sim -- --size ${size} --seed ${seed}): ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }
}

/** Sums of a set of runs: what the faults and clients exercised. */
export function totals(results: readonly SeedResult[]) {
  const sum = (pick: (r: SeedResult) => number) => results.reduce((total, r) => total + pick(r), 0);
  return {
    seeds: results.length,
    operations: sum((r) => r.operations),
    events: sum((r) => r.events),
    crashes: sum((r) => r.counts.crashes),
    stops: sum((r) => r.counts.stops),
    pauses: sum((r) => r.counts.pauses),
    partitions: sum((r) => r.counts.partitions),
    retries: sum((r) => r.counts.retries),
    duplicates: sum((r) => r.counts.duplicates),
    unknown: sum((r) => r.counts.unknown),
  };
}

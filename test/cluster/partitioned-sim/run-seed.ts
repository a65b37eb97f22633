import { checkSettled } from "./checks.ts";
import { type FaultProfile, PartitionedSimulation, type PsimOptions } from "./partitioned-sim.ts";

/** Virtual time of one run: the cluster formed, faults and clients, the heal, the final reads. */
const FORM_MS = 20_000;
export const FAULT_MS = 15_000;
const HEAL_MS = 60_000;
const FINAL_MS = 20_000;

export interface SeedResult {
  seed: number;
  founders: number;
  faults: FaultProfile;
  operations: number;
  versions: number;
  counts: PartitionedSimulation["counts"] & PartitionedSimulation["clients"]["counts"];
  events: number;
  fingerprint: string;
}

/**
 * One seed, start to verdict: the cluster forms and opens its bank; `faultMs` of faults, clients and
 * a membership change each way; then the faults end, the cluster must settle, answer every node's
 * final reads, and pass checks.ts. Throws with the seed and how to replay it.
 */
export async function runSeed(
  seed: number,
  founders: number,
  options: Omit<PsimOptions, "seed" | "founders"> & { faultMs?: number },
): Promise<SeedResult> {
  const sim = new PartitionedSimulation({ ...options, seed, founders });
  try {
    await sim.form(FORM_MS);
    await sim.run(options.faultMs ?? FAULT_MS);
    await sim.heal(HEAL_MS);
    await sim.finalReads(FINAL_MS);
    const { operations, versions } = checkSettled(sim);
    return {
      seed,
      founders,
      faults: options.faults,
      operations,
      versions,
      counts: { ...sim.counts, ...sim.clients.counts },
      events: sim.time.fired,
      fingerprint: sim.fingerprint(),
    };
  } catch (error) {
    throw new Error(
      `partitioned simulation of ${founders} founders, ${options.faults} faults, seed ${seed} (replay: npm run partitioned:sim -- --founders ${founders} --faults ${options.faults} --seed ${seed}): ${error instanceof Error ? error.message : error}`,
      { cause: error },
    );
  }
}

/** Sums of a set of runs: what the faults and clients exercised. */
export function totals(results: readonly SeedResult[]) {
  const sum = (pick: (r: SeedResult) => number) => results.reduce((total, r) => total + pick(r), 0);
  const counts = Object.fromEntries(
    Object.keys(results[0]?.counts ?? {}).map((key) => [key, sum((r) => r.counts[key as keyof SeedResult["counts"]])]),
  );
  return { seeds: results.length, operations: sum((r) => r.operations), events: sum((r) => r.events), ...counts };
}

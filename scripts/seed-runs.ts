import { parseArgs } from "node:util";

export interface SeedRuns<R> {
  /** What runs, for the summary line ("server simulation"). */
  title: string;
  /** The command that runs it, for the usage line ("npm run server:sim --"). */
  command: string;
  /** The option naming a run's size ("size", "founders"), and the sizes it may take; runs take them in turn. */
  sizeOption: string;
  sizes: readonly number[];
  /** Another option a run takes, and the values it may have (the first by default). */
  variant?: { option: string; values: readonly string[] };
  defaults: { seeds: number; seconds: number; first: number };
  /** A progress line every this many seeds. */
  progressEvery: number;
  /** One seed, start to verdict; throws, naming the seed and its replay, when it fails. */
  run(seed: number, size: number, variant: string | undefined): Promise<R>;
  /** What a set of runs exercised. */
  totals(results: readonly R[]): object;
  fingerprint(result: R): string;
}

/**
 * A long run of a seeded simulation: seeds past CI's, its sizes in turn, until --seeds are done or
 * --seconds have passed, or one seed (--seed). Prints what the runs exercised; exits 1 at the first
 * failing seed (its error names the command that replays it), 2 on bad arguments.
 */
export async function runSeeds<R>(runs: SeedRuns<R>): Promise<never> {
  const options: Record<string, { type: "string"; default?: string }> = {
    seeds: { type: "string", default: String(runs.defaults.seeds) },
    seconds: { type: "string", default: String(runs.defaults.seconds) },
    first: { type: "string", default: String(runs.defaults.first) },
    [runs.sizeOption]: { type: "string" },
    seed: { type: "string" },
  };
  if (runs.variant) options[runs.variant.option] = { type: "string", default: runs.variant.values[0] };
  const { values } = parseArgs({ options });
  const variant = runs.variant === undefined ? undefined : String(values[runs.variant.option]);
  const [count, seconds, first] = [Number(values.seeds), Number(values.seconds), Number(values.first)];
  const asked = values[runs.sizeOption];
  const sizes = asked === undefined ? runs.sizes : [Number(asked)];
  if (
    ![count, first].every((n) => Number.isSafeInteger(n) && n >= 1) ||
    !(seconds > 0) ||
    !sizes.every((size) => runs.sizes.includes(size)) ||
    (variant !== undefined && !runs.variant!.values.includes(variant))
  ) {
    const option = `--${runs.sizeOption} ${runs.sizes.join("|")}`;
    const other = runs.variant ? ` [--${runs.variant.option} ${runs.variant.values.join("|")}]` : "";
    console.error(
      `usage: ${runs.command} [--seeds N ≥ 1] [--seconds S > 0] [--first N ≥ 1] [${option}]${other} [--seed N]`,
    );
    process.exit(2);
  }
  const started = performance.now();
  const elapsedS = () => (performance.now() - started) / 1_000;
  const results: R[] = [];
  const seeds = values.seed === undefined ? Array.from({ length: count }, (_, i) => first + i) : [Number(values.seed)];
  let exitCode = 0;
  for (const [i, seed] of seeds.entries()) {
    if (elapsedS() >= seconds) break;
    try {
      results.push(await runs.run(seed, sizes[i % sizes.length]!, variant));
    } catch (error) {
      console.error(error instanceof Error ? error.message : error);
      exitCode = 1;
      break;
    }
    if (results.length % runs.progressEvery === 0)
      console.log(`${results.length} seeds passed, ${elapsedS().toFixed(0)} s`);
  }
  console.log(`${runs.title}: ${JSON.stringify(runs.totals(results))} in ${elapsedS().toFixed(1)} s`);
  if (results.length === 1) console.log(runs.fingerprint(results[0]!));
  process.exit(exitCode);
}

/**
 * Two systems measured side by side in turns: the way both comparison benchmarks (bench-compare,
 * bench-cluster) turn one cell into a ratio that this noisy machine cannot skew much.
 */
import { median } from "./args.ts";
import { cpuQuiet, type QuietRule } from "./cpu.ts";

/** One system's figures in one run: its rate and what its latency column shows. */
export interface Measured {
  rate: number;
  latencyMs: number;
}

export interface Cell {
  /** Medians over the rounds, of the first system and of the second. */
  first: Measured;
  second: Measured;
  /** The median of the rounds' ratios (first ÷ second), and each of them in round order. */
  ratio: number;
  ratios: number[];
  /** Runs that started although the servers had not gone quiet (cpuQuiet gave up). */
  notQuiet: number;
}

/**
 * A cell measured `rounds` times, the two systems in turn (the first one first in even rounds, the
 * second first in odd ones), each run started once every process of `pids` is quiet (by `quiet`); the ratio is
 * the median of the rounds' ratios, each of two runs next to each other in time, so that the
 * machine's drift cancels.
 */
export async function measureInTurns<S>(
  systems: readonly [S, S],
  rounds: number,
  pids: readonly number[],
  measure: (system: S) => Promise<Measured>,
  quiet: QuietRule = {},
): Promise<Cell> {
  const runs: Measured[][] = [[], []];
  let notQuiet = 0;
  for (let round = 0; round < rounds; round++) {
    for (const which of round % 2 === 0 ? [0, 1] : [1, 0]) {
      if (!(await cpuQuiet(pids, quiet))) notQuiet++;
      runs[which]!.push(await measure(systems[which]!));
    }
  }
  const ratios = runs[0]!.map((run, i) => run.rate / runs[1]![i]!.rate);
  const mid = (measured: Measured[]): Measured => ({
    rate: median(measured.map((run) => run.rate)),
    latencyMs: median(measured.map((run) => run.latencyMs)),
  });
  return { first: mid(runs[0]!), second: mid(runs[1]!), ratio: median(ratios), ratios, notQuiet };
}

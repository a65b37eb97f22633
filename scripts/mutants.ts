#!/usr/bin/env bun
/**
 * Mutation testing: plants each known bug of a suite, one at a time, in a copy of the project, and
 * runs that suite's tests there. A mutant is caught when a test fails (or the run exceeds its time
 * bound); one that passes every test SURVIVED, and the exit status is then 1. The unmutated copy
 * runs first: the tests must pass before they can judge.
 *   raft     bugs of the Raft core (scripts/mutants/raft-mutants.ts) against test/cluster/raft
 *   cluster  bugs of the replicated server (scripts/mutants/cluster-mutants.ts) against the
 *            real-process fault tests of test/cluster/nemesis
 *
 *   npm run mutants                                  every Raft mutant
 *   npm run mutants -- figure-8 double-vote          only these
 *   npm run mutants -- --suite cluster               every cluster mutant
 *   MUTANT_SECONDS=300 npm run mutants               the time bound per run (default 180 s)
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { CLUSTER_MUTANTS } from "./mutants/cluster-mutants.ts";
import { type Mutant, RAFT_MUTANTS } from "./mutants/raft-mutants.ts";
import { plant, Sandbox } from "./mutants/sandbox.ts";
import { runTests, type TestOutcome } from "./mutants/test-run.ts";

const ROOT = resolve(import.meta.dir, "..");
const SUITES: Record<string, { mutants: readonly Mutant[]; tests: string[] }> = {
  raft: { mutants: RAFT_MUTANTS, tests: ["test/cluster/raft"] },
  cluster: { mutants: CLUSTER_MUTANTS, tests: ["test/cluster/nemesis"] },
};
const LIMIT_SECONDS = Number(process.env.MUTANT_SECONDS ?? 180);

const { values: flags, positionals } = parseArgs({
  options: { suite: { type: "string", default: "raft" } },
  allowPositionals: true,
});
const suite = SUITES[flags.suite];
if (!suite) {
  console.error(`no suite named ${flags.suite}: ${Object.keys(SUITES).join(" or ")}`);
  process.exit(2);
}

function selected(all: readonly Mutant[], names: readonly string[]): readonly Mutant[] {
  if (names.length === 0) return all;
  const unknown = names.filter((name) => !all.some((m) => m.name === name));
  if (unknown.length > 0) throw new Error(`no mutant named ${unknown.join(", ")}`);
  return all.filter((m) => names.includes(m.name));
}

/** Every mutant must apply to the code as it is now, before an hour is spent running any. */
function checkApplies(mutants: readonly Mutant[]): void {
  for (const mutant of mutants) plant(readFileSync(resolve(ROOT, mutant.file), "utf8"), mutant);
}

function verdict(outcome: TestOutcome): { result: string; by: string } {
  switch (outcome.kind) {
    case "passed":
      return { result: "SURVIVED", by: "" };
    case "failed":
      return { result: "caught", by: outcome.error ? `${outcome.test} (${outcome.error})` : outcome.test };
    case "timedOut":
      return { result: "caught", by: `time bound of ${LIMIT_SECONDS} s exceeded` };
    case "broken":
      return { result: "BROKEN", by: "no test failed, yet the run did (the mutant does not load?)" };
  }
}

async function main({ mutants: all, tests }: { mutants: readonly Mutant[]; tests: string[] }): Promise<number> {
  const mutants = selected(all, positionals);
  checkApplies(mutants);
  const started = performance.now();
  const sandbox = new Sandbox(ROOT);
  try {
    const baseline = await runTests(sandbox.dir, tests, LIMIT_SECONDS);
    if (baseline.kind !== "passed") {
      if (baseline.kind === "timedOut")
        console.error(`the unmutated tests did not finish within ${LIMIT_SECONDS} s: raise MUTANT_SECONDS`);
      else console.error("the unmutated tests do not pass: fix them first");
      if (baseline.kind === "broken") console.error(baseline.output);
      else if (baseline.kind === "failed") console.error(`${baseline.test}: ${baseline.error}`);
      return 2;
    }
    console.log(`unmutated: the tests (${tests.join(", ")}) pass in ${baseline.seconds.toFixed(1)} s`);
    const rows: string[][] = [];
    let bad = 0;
    for (const mutant of mutants) {
      const outcome = await sandbox.with(mutant, () => runTests(sandbox.dir, tests, LIMIT_SECONDS));
      const { result, by } = verdict(outcome);
      if (result !== "caught") bad++;
      rows.push([mutant.name, result, outcome.seconds.toFixed(1), by]);
      console.log(`${result.padEnd(8)} ${mutant.name}: ${mutant.description}${by ? ` — ${by}` : ""}`);
    }
    console.log();
    printTable(["mutant", "result", "s", "caught by"], rows);
    const minutes = (performance.now() - started) / 60_000;
    console.log(
      `\n${mutants.length - bad} of ${mutants.length} mutants caught, ${bad} not; ${minutes.toFixed(1)} min in all`,
    );
    return bad === 0 ? 0 : 1;
  } finally {
    sandbox.remove();
  }
}

function printTable(header: readonly string[], rows: readonly string[][]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => (i === cells.length - 1 ? cell : cell.padEnd(widths[i]!)))
      .join("  ")
      .trimEnd();
  console.log(line(header));
  console.log(line(widths.map((w) => "-".repeat(w))));
  for (const row of rows) console.log(line(row));
}

process.exit(await main(suite));

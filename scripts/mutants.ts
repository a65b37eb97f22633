#!/usr/bin/env bun
/**
 * Mutation testing of the Raft core: plants each known bug of scripts/mutants/raft-mutants.ts, one
 * at a time, in a copy of the project, and runs the Raft tests there. A mutant is caught when a
 * test fails (or the run exceeds its time bound); one that passes every test SURVIVED, and the exit
 * status is then 1. The unmutated copy runs first: the tests must pass before they can judge.
 *
 *   npm run mutants                         every mutant
 *   npm run mutants -- figure-8 double-vote  only these
 *   MUTANT_SECONDS=300 npm run mutants      the time bound per run (default 180 s)
 */
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { type Mutant, RAFT_MUTANTS } from "./mutants/raft-mutants.ts";
import { plant, Sandbox } from "./mutants/sandbox.ts";
import { runTests, type TestOutcome } from "./mutants/test-run.ts";

const ROOT = resolve(import.meta.dir, "..");
const TESTS = ["test/cluster/raft"];
const LIMIT_SECONDS = Number(process.env.MUTANT_SECONDS ?? 180);

function selected(names: readonly string[]): readonly Mutant[] {
  if (names.length === 0) return RAFT_MUTANTS;
  const unknown = names.filter((name) => !RAFT_MUTANTS.some((m) => m.name === name));
  if (unknown.length > 0) throw new Error(`no mutant named ${unknown.join(", ")}`);
  return RAFT_MUTANTS.filter((m) => names.includes(m.name));
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

async function main(): Promise<number> {
  const mutants = selected(process.argv.slice(2));
  checkApplies(mutants);
  const started = performance.now();
  const sandbox = new Sandbox(ROOT);
  try {
    const baseline = await runTests(sandbox.dir, TESTS, LIMIT_SECONDS);
    if (baseline.kind !== "passed") {
      if (baseline.kind === "timedOut")
        console.error(`the unmutated Raft tests did not finish within ${LIMIT_SECONDS} s: raise MUTANT_SECONDS`);
      else console.error("the unmutated Raft tests do not pass: fix them first");
      if (baseline.kind === "broken") console.error(baseline.output);
      else if (baseline.kind === "failed") console.error(`${baseline.test}: ${baseline.error}`);
      return 2;
    }
    console.log(`unmutated: the Raft tests pass in ${baseline.seconds.toFixed(1)} s`);
    const rows: string[][] = [];
    let bad = 0;
    for (const mutant of mutants) {
      const outcome = await sandbox.with(mutant, () => runTests(sandbox.dir, TESTS, LIMIT_SECONDS));
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

process.exit(await main());

import { expect, test } from "bun:test";
import { leftoverProcesses, quickBenchOutput, runBenchScript } from "../helpers/bench-smoke.ts";
import { ROOT } from "../helpers/processes.ts";

/**
 * Smoke runs of the per-member CPU benchmark. The figures are not checked (this is not a timing
 * assertion); the shape of the report, the arguments reaching the members, and the cleanup are.
 */
const LEFTOVERS = "bench-homekv-";

test("--quick --compare prints every run and the A ÷ B ratio, and leaves no process behind", async () => {
  // A second checkout that is this one again: what matters here is that both sides run, alternating.
  const out = await quickBenchOutput("bench-member-cpu.ts", LEFTOVERS, [
    "--placement",
    "both",
    "--compare",
    ROOT,
    "--rounds",
    "2",
  ]);
  const number = String.raw`[\d,.]+`;
  const member = String.raw`(\*\*${number}\*\* \(leader\)|${number})`;
  for (const checkout of ["A", "B"])
    for (const round of [1, 2])
      for (const where of ["leader", "all 3"]) {
        const row = new RegExp(
          String.raw`\| ${checkout} \| ${round} \| ${where} \| ${number} \| ${member} \| ${member} \| ${member} \| ${number} \| ${number} / ${number} / ${number} \| ${number} \|`,
        );
        expect(out).toMatch(row);
        // Exactly one member of the row is marked as the leader.
        expect(out.match(row)![0].match(/\(leader\)/g)).toHaveLength(1);
      }
  // Round 2 starts with B: the order alternates, so that a drift of the machine's load favours neither.
  expect(out.indexOf("| B | 2 |")).toBeLessThan(out.indexOf("| A | 2 |"));
  for (const where of ["leader", "all 3"]) expect(out).toMatch(new RegExp(`\\| ${where} \\| A ÷ B \\| [\\d.]+ \\|`));
}, 300_000);

test("--serve-args reach the members: a limit below the value size fails the run, which says so and cleans up", async () => {
  // The benchmark writes 100-byte values; whichever member leads must refuse them.
  const { exitCode, err } = await runBenchScript("bench-member-cpu.ts", [
    "--quick",
    "--serve-args",
    "--max-value-bytes 10",
  ]);
  expect(exitCode).not.toBe(0);
  expect(err).toMatch(/leader warm-up: \{"INVALID_ARGUMENT":\d+\} of \d+ requests failed/);
  expect(leftoverProcesses(LEFTOVERS)).toBe("");
}, 120_000);

import { expect, test } from "bun:test";
import { quickBenchOutput } from "../helpers/bench-smoke.ts";
import { ROOT } from "../helpers/processes.ts";

/**
 * A smoke run of the batch CPU benchmark. The figures are not checked (this is not a timing
 * assertion); the shape of the report, the profile's breakdown of the measured window, and the
 * cleanup are.
 */
test("--quick --profile --compare prints every run with its stages, and the A ÷ B ratios", async () => {
  const out = await quickBenchOutput("bench-batch-cpu.ts", "bench-homekv-", [
    "--profile",
    "--compare",
    ROOT,
    "--rounds",
    "2",
  ]);
  const number = String.raw`[\d,.]+`;
  for (const checkout of ["A", "B"])
    for (const round of [1, 2])
      for (const workload of ["the same 100 keys", "spread over 1,000"])
        expect(out).toMatch(
          new RegExp(String.raw`\| ${checkout} \| ${round} \| ${workload} \| ${number} \| ${number} \| ${number} \|`),
        );
  // Round 2 starts with B: the order alternates, so that a drift of the machine's load favours neither.
  expect(out.indexOf("| B | 2 |")).toBeLessThan(out.indexOf("| A | 2 |"));
  // Every run was profiled, and its measured window holds samples of the store applying the batches.
  expect(out.match(/sampled on the JS thread: [\d.]+ µs\/key: .*MVCC apply [\d.]+/g)).toHaveLength(8);
  expect(out.match(/most self time, µs\/key: /g)).toHaveLength(8);
  for (const workload of ["the same 100 keys", "spread over 1,000"])
    expect(out).toMatch(new RegExp(String.raw`\| ${workload} \| A ÷ B \| ${number} \| \*\*${number}\*\* \|`));
}, 300_000);

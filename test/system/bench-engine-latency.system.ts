import { expect, test } from "bun:test";
import { quickBenchOutput } from "../helpers/bench-smoke.ts";

/**
 * A smoke run of the engine latency benchmark: a server on each engine takes the load, the FLSM one
 * flushes and compacts meanwhile, and every ratio comes out. The figures are not checked (this is
 * not a timing assertion).
 */
test("--quick drives both engines, shows the FLSM engine's flushes and compactions, and the ratios", async () => {
  const out = await quickBenchOutput("bench-engine-latency.ts", "bench-homekv-");
  expect(out).toMatch(/\| 1 \| memory \| [\d,]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \|/);
  const flsm = /\| 1 \| flsm \| [\d,]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| ([\d,]+) \| ([\d,]+) \|/.exec(out);
  expect(flsm).not.toBeNull();
  expect(Number(flsm![1]!.replace(/,/g, ""))).toBeGreaterThan(0);
  for (const measure of ["sets/s", "p50", "p99", "p99.9"])
    expect(out).toMatch(new RegExp(`\\| ${measure.replace(".", "\\.")} \\| \\*\\*[\\d.]+×\\*\\* \\|`));
}, 120_000);

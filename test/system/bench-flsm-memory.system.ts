import { expect, test } from "bun:test";
import { quickBenchOutput } from "../helpers/bench-smoke.ts";

/**
 * The FLSM engine's memory bound, checked on a server: the quick run loads more data than the
 * bound (memtable + block cache + 256 MiB) would leave room for if the engine kept it in memory,
 * then reads it back at random, and the server's peak RSS stays within the bound.
 */
test("--quick: a load larger than the bound leaves the server's peak RSS within memtable + block cache + 256 MiB", async () => {
  const out = await quickBenchOutput("bench-flsm-memory.ts", "bench-homekv-");
  const mib = (row: string) => Number(new RegExp(`\\| ${row} \\| ([\\d,]+) \\|`).exec(out)?.[1]?.replace(/,/g, ""));
  const bound = mib("bound: memtable \\+ block cache \\+ 256 MiB \\(MiB\\)");
  const peak = mib("peak RSS of the process's life, VmHWM \\(MiB\\)");
  const loaded = /\(([\d,]+) MiB\), random order/.exec(out)?.[1]?.replace(/,/g, "");
  expect(Number(loaded)).toBeGreaterThan(bound);
  expect(peak).toBeGreaterThan(0);
  expect(peak).toBeLessThanOrEqual(bound);
  expect(out).toContain("within the bound");
}, 300_000);

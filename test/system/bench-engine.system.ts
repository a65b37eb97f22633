import { expect, test } from "bun:test";
import { runBenchScript } from "../helpers/bench-smoke.ts";

/**
 * A smoke run of the engine benchmark: both engines load, read and scan, and every measure comes out
 * with its ratio. The figures are not checked (this is not a timing assertion).
 */
test("--quick measures FLSM and LevelDB side by side, every row with its ratio", async () => {
  const { exitCode, out, err } = await runBenchScript("bench-engine.ts", ["--quick"]);
  expect(exitCode === 0 ? "" : `exit ${exitCode}: ${err}`).toBe("");
  // LevelDB compresses its tables: values compress to about half, as its own db_bench makes them.
  expect(out).toContain("100-byte values (half)");
  for (const measure of ["write throughput", "write amplification", "random point read", "range scan", "process RSS"])
    expect(out).toMatch(new RegExp(`\\| ${measure}[^|]* \\| [\\d,.]+ \\| [\\d,.]+ \\| \\*\\*[\\d.]+×\\*\\* \\|`));
  // Where FLSM's bytes went, level by level: its flushes wrote level 0.
  const byLevel = /FLSM table bytes written into each level per user byte[^:]*: (.*)/.exec(out)?.[1] ?? "";
  expect(Number(/^L0 ([\d.]+)/.exec(byLevel)?.[1])).toBeGreaterThan(0);
}, 300_000);

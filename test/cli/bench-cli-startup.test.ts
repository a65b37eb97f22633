import { afterAll, beforeAll, expect, test } from "bun:test";
import { join } from "node:path";
import type { CallCost } from "../../scripts/bench-cli-startup.ts";
import { buildBinary } from "../../scripts/build.ts";
import { ROOT, scratchDir } from "../helpers/processes.ts";

/** A smoke run of scripts/bench-cli-startup.ts: sane figures, never a timing threshold. */
let scratch: ReturnType<typeof scratchDir>;
let binary: string;

beforeAll(() => {
  scratch = scratchDir("homekv-bench-cli-");
  binary = buildBinary(join(scratch.path, "homekv"));
}, 120_000);

afterAll(() => scratch.cleanup());

test("scripts/bench-cli-startup.ts --runs 3 reports wall time and memory per call", async () => {
  const proc = Bun.spawn(
    [process.execPath, join(ROOT, "scripts", "bench-cli-startup.ts"), "--binary", binary, "--runs", "3", "--json"],
    { cwd: ROOT, stdout: "pipe", stderr: "pipe", timeout: 60_000 },
  );
  const [stdout, stderr, exitCode] = await Promise.all([
    new Response(proc.stdout).text(),
    new Response(proc.stderr).text(),
    proc.exited,
  ]);
  expect({ exitCode, stderr }).toEqual({ exitCode: 0, stderr: "" });
  const costs = JSON.parse(stdout) as CallCost[];
  const withRedis = Bun.which("redis-cli") !== null && Bun.which("redis-server") !== null;
  expect(costs.map((cost) => cost.client)).toEqual(withRedis ? ["homekv get", "redis-cli get"] : ["homekv get"]);
  for (const cost of costs) {
    expect(cost.runs).toBe(3);
    expect(cost.wallMsMedian).toBeGreaterThan(0);
    expect(cost.wallMsP90).toBeGreaterThanOrEqual(cost.wallMsMedian);
    expect(cost.wallMsP90).toBeLessThan(10_000);
    if (Bun.which("/usr/bin/time") !== null) expect(cost.peakRssMiBMedian).toBeGreaterThan(1);
  }
}, 90_000);

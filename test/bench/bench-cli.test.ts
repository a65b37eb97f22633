import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { HomeKvClient } from "../../src/client/client.ts";
import { ROOT, runHomekv, type ServerProcess, startServerProcess } from "../helpers/processes.ts";

/** Tiny smoke runs only: benchmarks are measured by scripts/, never timed in the suite. */
let server: ServerProcess;
const bench = (...args: string[]) => runHomekv(["bench", "-p", String(server.port), ...args]);

beforeAll(async () => {
  server = await startServerProcess();
});

afterAll(async () => {
  await server.stop();
});

describe("homekv bench", () => {
  test("set: sends exactly -n requests and reports throughput, latency and no errors", async () => {
    const before = await metrics();
    const result = await bench("--op", "set", "-n", "300", "-c", "8", "--batch", "3", "--keys", "50", "--json");
    expect(result.exitCode).toBe(0);
    const report = JSON.parse(result.stdout);
    expect(report).toMatchObject({ requests: 300, keys: 900, errors: {} });
    expect(report.requestsPerSecond).toBeGreaterThan(0);
    expect(report.latencyUs.p50).toBeLessThanOrEqual(report.latencyUs.p99);
    expect(report.latencyUs.p99).toBeLessThanOrEqual(report.latencyUs.max);
    const after = await metrics();
    expect(after.revision - before.revision).toBe(300); // one commit per Set; the connectivity probe is a Get
  });

  test("mixed with prefill: every key exists before the first get", async () => {
    const result = await bench("--op", "mixed", "--ratio", "0.5", "-n", "200", "--keys", "2000", "--json");
    expect(JSON.parse(result.stdout)).toMatchObject({ requests: 200, errors: {} });
    const client = new HomeKvClient({ address: server.address });
    const { records } = await client.get(["bench/0000000000", "bench/0000001999"]);
    client.close();
    expect(records.every((r) => r.value !== undefined)).toBe(true);
  });

  test("--warmup: requests are sent for that long first and not counted; -n counts from its end", async () => {
    const before = await metrics();
    const result = await bench("--op", "set", "-n", "100", "-c", "4", "--keys", "50", "--warmup", "500ms", "--json");
    expect(result.exitCode).toBe(0);
    expect(JSON.parse(result.stdout).requests).toBe(100);
    const after = await metrics();
    expect(after.revision - before.revision).toBeGreaterThan(100); // the warm-up's writes landed too
  });

  test("--duration bounds the run in time", async () => {
    const started = performance.now();
    const result = await bench("--op", "get", "--duration", "300ms", "--keys", "100", "--json");
    expect(JSON.parse(result.stdout).requests).toBeGreaterThan(0);
    expect(performance.now() - started).toBeLessThan(10_000);
  });

  test("human report names throughput, percentiles and errors", async () => {
    const { stdout } = await bench("-n", "50");
    expect(stdout).toContain("requests/s");
    expect(stdout).toContain("p99.9");
    expect(stdout).toContain("errors     none");
  });

  test("errors by status are counted, not fatal", async () => {
    const result = await bench(
      "--op",
      "set",
      "-n",
      "20",
      "-c",
      "4",
      "--value-size",
      String(1024 * 1024 + 1),
      "--keys",
      "10",
      "--json",
    );
    expect(JSON.parse(result.stdout).errors).toEqual({ INVALID_ARGUMENT: 20 });
  });

  test("bad flags are one clear line each", async () => {
    for (const [args, text] of [
      [["--op", "frob"], "Expected one of: get, set, del, mixed."],
      [["--ratio", "2"], "--ratio must be a number from 0 to 1"],
      [["--batch", "20", "--keys", "10"], "--batch 20 is more than --keys 10"],
      [["--duration", "soon"], "--duration must be a duration"],
      [["--warmup", "later"], "--warmup must be a duration"],
      [["-c", "0"], "-c must be a whole number"],
    ] as const) {
      const result = await bench(...args);
      expect(result.exitCode).toBe(2);
      expect(result.stderr.trim().split("\n")).toHaveLength(1);
      expect(result.stderr).toContain(text);
    }
  });

  test("an unreachable server is one clear line", async () => {
    const result = await runHomekv(["bench", "-p", "1", "-n", "5"]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr).toContain("cannot reach HomeKV at 127.0.0.1:1");
  });
});

test("scripts/bench-group-commit.ts runs (smoke)", async () => {
  const proc = Bun.spawn(
    [
      process.execPath,
      `${ROOT}/scripts/bench-group-commit.ts`,
      "--duration",
      "200ms",
      "--warmup",
      "100ms",
      "--rounds",
      "1",
    ],
    { stdout: "pipe", stderr: "pipe" },
  );
  const out = await new Response(proc.stdout).text();
  expect(await proc.exited).toBe(0);
  expect(out).toMatch(/64 writers \/ 1 writer: [\d.]+×/);
}, 60_000);

async function metrics() {
  return JSON.parse((await runHomekv(["metrics", "-p", String(server.port), "--json"])).stdout);
}

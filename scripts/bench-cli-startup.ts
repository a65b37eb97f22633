#!/usr/bin/env bun
/**
 * What one CLI call costs: runs `homekv get somekey` against a server on loopback again and again
 * and reports the median and p90 wall time and the peak resident memory of a call; the same for
 * `redis-cli get somekey` when redis-cli and redis-server are installed (nothing is installed).
 * Scripts call the CLI in loops, so this per-process cost is what they pay.
 *
 *   bun scripts/bench-cli-startup.ts [--binary dist/homekv] [--runs 30] [--json]
 *
 * It builds nothing: `npm run build` makes dist/homekv. The server is the same binary, in memory.
 * Wall time is measured around the whole process, as a shell loop sees it; peak memory is
 * /usr/bin/time's maximum resident set (%M), without which memory is not reported.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { flag, median } from "./bench/args.ts";
import { freePort, stopProcess } from "./bench/servers.ts";

const RUNS_MAX = 1_000;
const CALL_TIMEOUT_MS = 10_000;
const START_TIMEOUT_MS = 15_000;
const TIME = "/usr/bin/time";

export interface CallCost {
  client: string;
  runs: number;
  wallMsMedian: number;
  wallMsP90: number;
  /** Undefined without /usr/bin/time. */
  peakRssMiBMedian: number | undefined;
}

/** The value at `share` (0..1) of the sorted values, by nearest rank. */
function percentile(values: readonly number[], share: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil(share * sorted.length) - 1)]!;
}

/** Runs `command` `runs` times, one after another, each a fresh process that must succeed. */
function measure(client: string, command: readonly string[], runs: number): CallCost {
  const timed = Bun.which(TIME) !== null;
  const walls: number[] = [];
  const rssKiB: number[] = [];
  for (let run = 0; run < runs; run++) {
    const started = performance.now();
    const result = Bun.spawnSync(timed ? [TIME, "-f", "%M", ...command] : [...command], {
      stdout: "pipe",
      stderr: "pipe",
      stdin: "ignore",
      timeout: CALL_TIMEOUT_MS,
    });
    walls.push(performance.now() - started);
    const stderr = result.stderr.toString();
    if (result.exitCode !== 0) throw new Error(`${command.join(" ")} exited with ${result.exitCode}: ${stderr}`);
    // time writes its figure as the last line of stderr, after whatever the command wrote.
    if (timed) rssKiB.push(Number(stderr.trim().split("\n").at(-1)));
  }
  return {
    client,
    runs,
    wallMsMedian: median(walls),
    wallMsP90: percentile(walls, 0.9),
    peakRssMiBMedian: timed ? median(rssKiB) / 1024 : undefined,
  };
}

/** Reads the output of a starting process until `pattern` matches, bounded by START_TIMEOUT_MS. */
async function waitForLine(proc: Subprocess<"ignore", "pipe", "inherit">, pattern: RegExp): Promise<RegExpExecArray> {
  let output = "";
  const reader = proc.stdout.getReader();
  const decoder = new TextDecoder();
  const deadline = Date.now() + START_TIMEOUT_MS;
  const timeout = setTimeout(() => reader.cancel(), START_TIMEOUT_MS);
  try {
    while (Date.now() < deadline) {
      const { value, done } = await reader.read();
      if (done) break;
      output += decoder.decode(value, { stream: true });
      const match = pattern.exec(output);
      if (match) return match;
    }
  } finally {
    clearTimeout(timeout);
    reader.releaseLock();
  }
  proc.kill("SIGKILL");
  throw new Error(`waited ${START_TIMEOUT_MS} ms for ${pattern} from ${proc.pid}; it printed:\n${output}`);
}

async function benchHomekv(binary: string, runs: number): Promise<CallCost> {
  const server = Bun.spawn([binary, "serve", "--host", "127.0.0.1", "-p", "0", "--in-memory"], {
    stdout: "pipe",
    stderr: "inherit",
    stdin: "ignore",
    env: { ...process.env, NO_COLOR: "1" },
  });
  try {
    const [, port] = await waitForLine(server, /listening on 127\.0\.0\.1:(\d+)/);
    const call = (...args: string[]) => [binary, ...args, "-H", "127.0.0.1", "-p", port!];
    measure("setup", call("set", "somekey=somevalue"), 1);
    return measure("homekv get", call("get", "somekey"), runs);
  } finally {
    await stopProcess(server);
  }
}

async function benchRedisCli(runs: number): Promise<CallCost | undefined> {
  if (Bun.which("redis-cli") === null || Bun.which("redis-server") === null) return undefined;
  const dir = mkdtempSync(join(tmpdir(), "bench-cli-redis-"));
  // Port 0 would turn Redis's TCP listener off: ask for a free one first.
  const port = String(freePort());
  const server = Bun.spawn(
    ["redis-server", "--port", port, "--bind", "127.0.0.1", "--dir", dir, "--save", "", "--appendonly", "no"],
    { stdout: "pipe", stderr: "inherit", stdin: "ignore" },
  );
  try {
    await waitForLine(server, /Ready to accept connections/);
    measure("setup", ["redis-cli", "-p", port, "set", "somekey", "somevalue"], 1);
    return measure("redis-cli get", ["redis-cli", "-p", port, "get", "somekey"], runs);
  } finally {
    await stopProcess(server);
    rmSync(dir, { recursive: true, force: true });
  }
}

function formatCost(cost: CallCost): string {
  const rss = cost.peakRssMiBMedian === undefined ? "n/a" : `${cost.peakRssMiBMedian.toFixed(1)} MiB`;
  return `${cost.client.padEnd(14)} ${cost.runs} runs: wall median ${cost.wallMsMedian.toFixed(1)} ms, p90 ${cost.wallMsP90.toFixed(1)} ms; peak RSS median ${rss}`;
}

if (import.meta.main) {
  const binary = resolve(flag("--binary", resolve(import.meta.dir, "..", "dist", "homekv")));
  const runs = Number(flag("--runs", "30"));
  if (!Number.isInteger(runs) || runs < 1 || runs > RUNS_MAX)
    throw new Error(`--runs must be a whole number from 1 to ${RUNS_MAX}`);
  if (!(await Bun.file(binary).exists())) throw new Error(`no binary at ${binary}: npm run build makes dist/homekv`);
  const costs = [await benchHomekv(binary, runs), await benchRedisCli(runs)].filter((cost) => cost !== undefined);
  console.log(process.argv.includes("--json") ? JSON.stringify(costs) : costs.map(formatCost).join("\n"));
}

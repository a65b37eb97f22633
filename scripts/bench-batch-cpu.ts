#!/usr/bin/env bun
/**
 * Server CPU per key of 100-key batch Sets on a single `homekv serve --fsync always`, and with
 * `--profile`, where that time goes by stage of the write path. Throughput moves 2× between runs on
 * this shared machine; the server's CPU time per key (/proc/PID/stat, all threads) much less, so it
 * is what a change to the batch path is judged by.
 *
 *   bun scripts/bench-batch-cpu.ts [--keys 100,100000] [-c 64] [--requests 20000] [--warmup 3000]
 *     [--compare DIR] [--rounds 1] [--profile] [--serve-args "..."] [--quick]
 *
 * `--keys` lists keyspaces, each run on a fresh server: 100 is the same 100 keys in every batch,
 * 100000 keys spread. Each run sends `--warmup` batches uncounted, then `--requests` through this
 * project's load generator (src/bench), `-c` in flight on one connection. `--compare DIR` runs the
 * same against the checkout in DIR (another worktree's src/main.ts), which one goes first
 * alternating by round, and ends with the medians and A ÷ B. `--profile` runs the servers under
 * `bun --cpu-prof` and prints, per run, the sampled CPU time per key of each stage (decode,
 * validation, WAL encoding, MVCC apply, ...) over the measured requests only; profiling slows the
 * server, so compare CPU per key between runs that were both profiled or both not. `--quick` is a
 * smoke run (test/system/bench-batch-cpu.system.ts).
 */
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { connectH2Pool } from "../src/bench/h2-unary.ts";
import { type BenchResult, runBench } from "../src/bench/run-bench.ts";
import { createWorkload } from "../src/bench/workload.ts";
import { checkArguments, flag, integerFlag, median } from "./bench/args.ts";
import { announceCheckouts, type Checkout, turnsOf } from "./bench/checkout.ts";
import { cpuSeconds, loadAverage } from "./bench/cpu.ts";
import { OTHER_STAGE, summarizeProfile } from "./bench/profile-breakdown.ts";
import { startHomekv, stopAll, stopAllOnExit } from "./bench/servers.ts";

const BATCH = 100;
const VALUE_FLAGS = ["--keys", "-c", "--requests", "--warmup", "--compare", "--rounds", "--serve-args"];
checkArguments(process.argv.slice(2), VALUE_FLAGS, ["--profile", "--quick"]);
const quick = process.argv.includes("--quick");
const keyspaces = flag("--keys", quick ? "100,1000" : "100,100000")
  .split(",")
  .map((text) => integerFlag("--keys", text, BATCH));
const concurrency = integerFlag("-c", flag("-c", "64"), 1);
const requests = integerFlag("--requests", flag("--requests", quick ? "100" : "20000"), 1);
const warmup = integerFlag("--warmup", flag("--warmup", quick ? "30" : "3000"), 0);
const rounds = integerFlag("--rounds", flag("--rounds", "1"), 1);
const compareDir = flag("--compare", "");
const profiled = process.argv.includes("--profile");
const serveArgs = flag("--serve-args", "")
  .split(/\s+/)
  .filter((arg) => arg !== "");
const VALUE_BYTES = 100;
const PROFILE_INTERVAL_US = 500;
/** Functions listed by self time under a profiled run. */
const TOP_FUNCTIONS = 25;

interface Run {
  checkout: Checkout;
  round: number;
  /** The keyspace: BATCH for the same keys in every request. */
  keys: number;
  keysPerSecond: number;
  cpuUsPerKey: number;
  load1m: number;
  /** Sampled µs per key by stage, and the functions with the most self time (profiled runs). */
  stages?: Map<string, number>;
  functions?: [string, number][];
}

function checkOk(result: BenchResult, what: string): void {
  if (Object.keys(result.errors).length > 0)
    throw new Error(`${what}: ${JSON.stringify(result.errors)} of ${result.requests} requests failed`);
}

/** A fresh server of `side`, loaded with batches over `keys` keys, then stopped. */
async function measure(side: Checkout, round: number, keys: number): Promise<Run> {
  const profileDir = profiled ? mkdtempSync(join(tmpdir(), "bench-batch-profile-")) : undefined;
  const runtimeArgs = profileDir
    ? ["--cpu-prof", `--cpu-prof-interval=${PROFILE_INTERVAL_US}`, `--cpu-prof-dir=${profileDir}`]
    : [];
  try {
    const server = await startHomekv(serveArgs, { checkout: side.dir, runtimeArgs });
    const pool = connectH2Pool(server.address, 1);
    const next = createWorkload({ op: "set", keys, valueSize: VALUE_BYTES, batch: BATCH, readRatio: 0, seed: 7 });
    let result: BenchResult;
    let window: { fromUs: number; toUs: number };
    let cpu: number;
    try {
      if (warmup > 0) checkOk(await runBench({ pool, next, concurrency, requests: warmup }), "warm-up");
      const before = cpuSeconds(server.pid);
      const fromUs = Date.now() * 1000;
      result = await runBench({ pool, next, concurrency, requests });
      window = { fromUs, toUs: Date.now() * 1000 };
      cpu = cpuSeconds(server.pid) - before;
      checkOk(result, "run");
    } finally {
      pool.close();
      // The profile is written as the server exits.
      await stopAll();
    }
    const run: Run = {
      checkout: side,
      round,
      keys,
      keysPerSecond: result.keysPerSecond,
      cpuUsPerKey: (cpu * 1e6) / result.keys,
      load1m: loadavg()[0]!,
    };
    if (profileDir) {
      const [file] = readdirSync(profileDir).filter((name) => name.endsWith(".cpuprofile"));
      if (!file) throw new Error(`the server wrote no CPU profile into ${profileDir}`);
      const summary = summarizeProfile(join(profileDir, file), { ...window, intervalUs: PROFILE_INTERVAL_US });
      const perKey = ([name, ms]: [string, number]): [string, number] => [name, (ms * 1000) / result.keys];
      run.stages = new Map([...summary.stages].map(perKey));
      run.functions = [...summary.functions]
        .map(perKey)
        .sort((a, b) => b[1] - a[1])
        .slice(0, TOP_FUNCTIONS);
    }
    return run;
  } finally {
    if (profileDir) rmSync(profileDir, { recursive: true, force: true });
  }
}

const rate = (n: number) => Math.round(n).toLocaleString("en-US");
const us = (n: number) => n.toFixed(2);
const workload = (keys: number) => (keys === BATCH ? "the same 100 keys" : `spread over ${rate(keys)}`);

function printRun(run: Run): void {
  console.log(
    `| ${run.checkout.label} | ${run.round} | ${workload(run.keys)} | ${rate(run.keysPerSecond)} | ${us(run.cpuUsPerKey)} | ${run.load1m.toFixed(1)} |`,
  );
  if (!run.stages) return;
  const sampled = [...run.stages.values()].reduce((a, b) => a + b, 0);
  const order = [...run.stages].sort((a, b) => (a[0] === OTHER_STAGE ? 1 : b[0] === OTHER_STAGE ? -1 : b[1] - a[1]));
  console.log(
    `|  |  | sampled on the JS thread: ${us(sampled)} µs/key: ${order.map(([stage, value]) => `${stage} ${us(value)}`).join("; ")} |  |  |  |`,
  );
  console.log(
    `|  |  | most self time, µs/key: ${run.functions!.map(([name, value]) => `${name} ${value.toFixed(3)}`).join("; ")} |  |  |  |`,
  );
}

function printSummary(runs: readonly Run[], checkouts: readonly Checkout[]): void {
  console.log(`\nMedians over ${rounds} round(s):\n`);
  console.log("| workload | checkout | keys/s | server CPU µs per key |");
  console.log("| --- | --- | ---: | ---: |");
  for (const keys of keyspaces) {
    const figures = checkouts.map((side) => {
      const mine = runs.filter((run) => run.keys === keys && run.checkout === side);
      return {
        keysPerSecond: median(mine.map((run) => run.keysPerSecond)),
        cpu: median(mine.map((run) => run.cpuUsPerKey)),
      };
    });
    for (const [i, m] of figures.entries())
      console.log(`| ${workload(keys)} | ${checkouts[i]!.label} | ${rate(m.keysPerSecond)} | ${us(m.cpu)} |`);
    const [a, b] = figures;
    if (a && b)
      console.log(
        `| ${workload(keys)} | A ÷ B | ${(a.keysPerSecond / b.keysPerSecond).toFixed(2)} | **${(a.cpu / b.cpu).toFixed(2)}** |`,
      );
  }
}

async function main(): Promise<void> {
  stopAllOnExit();
  const checkouts = announceCheckouts("Server CPU per key of 100-key batch sets, serve --fsync always", compareDir);
  console.log(
    `${VALUE_BYTES}-byte values, ${concurrency} in flight, ${requests} batches measured after ${warmup} of warm-up; a fresh server per checkout, keyspace and round${profiled ? "; profiled (bun --cpu-prof)" : ""}${serveArgs.length > 0 ? `; serve ${serveArgs.join(" ")}` : ""}`,
  );
  console.log(`load average at the start: ${loadAverage()}\n`);
  console.log("| checkout | round | workload | keys/s | server CPU µs per key | load 1m |");
  console.log("| --- | ---: | --- | ---: | ---: | ---: |");
  const runs: Run[] = [];
  for (const keys of keyspaces) {
    for (const { side, round } of turnsOf(checkouts, rounds)) {
      const run = await measure(side, round, keys);
      printRun(run);
      runs.push(run);
    }
  }
  if (checkouts.length > 1 || rounds > 1) printSummary(runs, checkouts);
  console.log(`\nload average at the end ${loadAverage()}`);
}

await main().finally(stopAll);

#!/usr/bin/env bun
/**
 * CPU time per replicated request, per member of a 3-member HomeKV cluster. On this shared machine
 * throughput moves 2× between runs of the same code, while each member's utime + stime per request
 * (/proc/PID/stat) moves far less: it is what tells a change to the replicated path from noise.
 *
 *   bun scripts/bench-member-cpu.ts [--op set|get|batch] [--keys 100000] [-c 64] [--requests 20000]
 *     [--warmup 3000] [--placement leader|spread|both] [--serve-args "--grpc-server native"]
 *     [--compare DIR] [--rounds 1] [--profile DIR] [--quick]
 *
 * Every checkout and round gets a fresh cluster (`serve --initial-cluster --fsync always`, filled
 * with the keyspace first for `get`). Per placement it sends `--warmup` requests uncounted, then
 * `--requests` through this project's load generator (src/bench), `-c` in flight over one connection
 * to the leader, or over one connection to each member with the calls dealt in turn (`spread`), and
 * reads every member's CPU time before and after. `batch` is a set of 100 keys in one request.
 * `--compare DIR` runs the same against the checkout in DIR (its src/main.ts: another worktree),
 * which of the two goes first alternating by round, and ends with the medians and the ratio of
 * total CPU per request. `--profile DIR` has each member write Bun's CPU profile (markdown) to
 * DIR/<checkout>-<round>/<member>.md when it stops: where a member's time per request goes. Every process it starts is stopped, on failure and on Ctrl-C too.
 * `--quick` is a smoke run (test/system/bench-member-cpu.system.ts).
 */
import { loadavg } from "node:os";
import { resolve } from "node:path";
import { type BenchResult, runBench } from "../src/bench/run-bench.ts";
import { createWorkload } from "../src/bench/workload.ts";
import { checkArguments, choiceFlag, flag, integerFlag, median } from "./bench/args.ts";
import { announceCheckouts, type Checkout, turnsOf } from "./bench/checkout.ts";
import { type Placement, placedPool, prefill } from "./bench/clients.ts";
import { type BenchCluster, NAMES, startHomekvCluster } from "./bench/cluster.ts";
import { cpuSeconds, loadAverage, writeCalls } from "./bench/cpu.ts";
import { stopAll, stopAllOnExit } from "./bench/servers.ts";

const VALUE_FLAGS = [
  "--op",
  "--keys",
  "-c",
  "--requests",
  "--warmup",
  "--placement",
  "--serve-args",
  "--compare",
  "--rounds",
  "--profile",
];

checkArguments(process.argv.slice(2), VALUE_FLAGS, ["--quick"]);
const quick = process.argv.includes("--quick");
const op = choiceFlag("--op", flag("--op", "set"), ["set", "get", "batch"] as const);
const keys = integerFlag("--keys", flag("--keys", quick ? "1000" : "100000"), 1);
const concurrency = integerFlag("-c", flag("-c", quick ? "8" : "64"), 1);
const requests = integerFlag("--requests", flag("--requests", quick ? "100" : "20000"), 1);
const warmup = integerFlag("--warmup", flag("--warmup", quick ? "30" : "3000"), 0);
const placementFlag = choiceFlag("--placement", flag("--placement", "leader"), ["leader", "spread", "both"] as const);
const placements: Placement[] = placementFlag === "both" ? ["leader", "spread"] : [placementFlag];
const rounds = integerFlag("--rounds", flag("--rounds", "1"), 1);
const serveArgs = flag("--serve-args", "")
  .split(/\s+/)
  .filter((arg) => arg !== "");
const compareDir = flag("--compare", "");
const profileDir = flag("--profile", "");
const valueSize = 100;
/** Keys per request: `batch` is one set of 100 (bench-cluster's batch cell). */
const batch = op === "batch" ? 100 : 1;

interface Run {
  checkout: Checkout;
  round: number;
  placement: Placement;
  requestsPerSecond: number;
  /** Per member, in the order of `NAMES`. */
  cpuUsPerRequest: number[];
  /** File write calls per request (log appends: fewer means larger batches per fsync), per member in the order of `NAMES`. */
  writesPerRequest: number[];
  leader: string;
  load1m: number;
}

/** A run whose requests failed measures something else than the replicated path: stop and say so. */
function checkOk(result: BenchResult, what: string): void {
  if (Object.keys(result.errors).length > 0)
    throw new Error(`${what}: ${JSON.stringify(result.errors)} of ${result.requests} requests failed`);
}

async function measure(cluster: BenchCluster, placement: Placement): Promise<Omit<Run, "checkout" | "round">> {
  const pool = await placedPool(cluster, placement);
  try {
    const next = createWorkload({ op: op === "get" ? "get" : "set", keys, valueSize, batch, readRatio: 1, seed: 7 });
    if (warmup > 0) checkOk(await runBench({ pool, next, concurrency, requests: warmup }), `${placement} warm-up`);
    const leader = (await cluster.leader()).name;
    const before = cluster.members.map((member) => cpuSeconds(member.pid()));
    const writesBefore = cluster.members.map((member) => writeCalls(member.pid()));
    const result = await runBench({ pool, next, concurrency, requests });
    const after = cluster.members.map((member) => cpuSeconds(member.pid()));
    const writesAfter = cluster.members.map((member) => writeCalls(member.pid()));
    checkOk(result, `${placement} run`);
    // The leader's share is the point of the table: a run during which it changed is not one.
    const leaderAfter = (await cluster.leader()).name;
    if (leaderAfter !== leader) throw new Error(`the leader changed from ${leader} to ${leaderAfter} during the run`);
    return {
      placement,
      requestsPerSecond: result.requestsPerSecond,
      cpuUsPerRequest: after.map((seconds, i) => ((seconds - before[i]!) * 1e6) / result.requests),
      writesPerRequest: writesAfter.map((count, i) => (count - writesBefore[i]!) / result.requests),
      leader,
      load1m: loadavg()[0]!,
    };
  } finally {
    pool.close();
  }
}

const rate = (n: number) => Math.round(n).toLocaleString("en-US");
const us = (n: number) => n.toFixed(n >= 100 ? 0 : 1);
const sum = (values: readonly number[]) => values.reduce((a, b) => a + b, 0);
const where = (placement: Placement) => (placement === "leader" ? "leader" : "all 3");

function printRunHeader(): void {
  console.log(
    `| checkout | round | clients on | req/s | ${NAMES.map((name) => `${name} µs/req`).join(" | ")} | total µs/req | file writes/req ${NAMES.join("/")} | load 1m |`,
  );
  console.log(`| --- | ---: | --- | ---: |${" ---: |".repeat(NAMES.length)} ---: | ---: | ---: |`);
}

function printRun(run: Run): void {
  const members = run.cpuUsPerRequest.map((cpu, i) => (NAMES[i] === run.leader ? `**${us(cpu)}** (leader)` : us(cpu)));
  console.log(
    `| ${run.checkout.label} | ${run.round} | ${where(run.placement)} | ${rate(run.requestsPerSecond)} | ${members.join(" | ")} | ${us(sum(run.cpuUsPerRequest))} | ${run.writesPerRequest.map((writes) => writes.toFixed(2)).join(" / ")} | ${run.load1m.toFixed(1)} |`,
  );
}

/** The medians over rounds of a checkout's runs with one placement. */
function medians(runs: readonly Run[]) {
  const leaderCpu = (run: Run) => run.cpuUsPerRequest[NAMES.indexOf(run.leader)]!;
  return {
    requestsPerSecond: median(runs.map((run) => run.requestsPerSecond)),
    leader: median(runs.map(leaderCpu)),
    // The mean of the two followers of each run.
    follower: median(runs.map((run) => (sum(run.cpuUsPerRequest) - leaderCpu(run)) / (NAMES.length - 1))),
    total: median(runs.map((run) => sum(run.cpuUsPerRequest))),
  };
}

function printSummary(runs: readonly Run[], checkouts: readonly Checkout[]): void {
  console.log(`\nMedians over ${rounds} round(s), CPU µs per request:\n`);
  console.log("| clients on | checkout | req/s | leader | each follower | total |");
  console.log("| --- | --- | ---: | ---: | ---: | ---: |");
  for (const placement of placements) {
    const figures = checkouts.map((side) =>
      medians(runs.filter((run) => run.placement === placement && run.checkout === side)),
    );
    for (const [i, m] of figures.entries())
      console.log(
        `| ${where(placement)} | ${checkouts[i]!.label} | ${rate(m.requestsPerSecond)} | ${us(m.leader)} | ${us(m.follower)} | ${us(m.total)} |`,
      );
    const [a, b] = figures;
    if (a && b) {
      const ratio = (key: keyof typeof a) => (a[key] / b[key]).toFixed(2);
      console.log(
        `| ${where(placement)} | A ÷ B | ${ratio("requestsPerSecond")} | ${ratio("leader")} | ${ratio("follower")} | **${ratio("total")}** |`,
      );
    }
  }
}

/** A fresh cluster of `side`'s members, every placement measured on it, then stopped. */
async function runCheckout(side: Checkout, round: number): Promise<Run[]> {
  const cluster = await startHomekvCluster({
    checkout: side.dir,
    serveArgs,
    profileDir: profileDir === "" ? undefined : resolve(profileDir, `${side.label}-${round}`),
  });
  try {
    if (op === "get") await prefill(cluster, { keys, valueSize });
    const runs: Run[] = [];
    for (const placement of placements) {
      const run = { ...(await measure(cluster, placement)), checkout: side, round };
      printRun(run);
      runs.push(run);
    }
    return runs;
  } finally {
    // Only this cluster is running: each run has the machine's cores to itself.
    await stopAll();
  }
}

async function main(): Promise<void> {
  stopAllOnExit();
  const checkouts = announceCheckouts("CPU per request per member, 3-member HomeKV (--fsync always)", compareDir);
  console.log(
    `op ${op} (${batch} key(s) per request), ${keys} keys, ${valueSize}-byte values, ${concurrency} in flight, ${requests} requests measured after ${warmup} of warm-up; a fresh cluster per checkout and round${serveArgs.length > 0 ? `; serve ${serveArgs.join(" ")}` : ""}`,
  );
  console.log(`load average at the start: ${loadAverage()}\n`);
  printRunHeader();
  const runs: Run[] = [];
  for (const { side, round } of turnsOf(checkouts, rounds)) runs.push(...(await runCheckout(side, round)));
  if (checkouts.length > 1 || rounds > 1) printSummary(runs, checkouts);
  console.log(`\nload average at the end: ${loadAverage()}`);
}

try {
  await main();
} finally {
  await stopAll();
}

#!/usr/bin/env bun
/**
 * A 3-member HomeKV beside a 3-member etcd on this machine, in one run, as ratios.
 *
 *   bun scripts/bench-cluster.ts [--duration 5] [--warmup 1] [--rounds 3] [--concurrency 64] [--keys 100000] [--value-size 100] [--failovers 5] [--quick]
 *
 * Installs etcd and h2load (nghttp2-client) from Debian when missing and starts both clusters on
 * loopback, every member fsyncing each commit (HomeKV --fsync always, etcd's default). Then:
 * 1. Throughput: single-key set (uniform keys), linearizable single-key get, set of 100 keys in one
 *    request, `--concurrency` in flight, with every client on the leader and then spread over the
 *    three members, driven by this project's load generator (src/bench, as bench-compare) and by
 *    h2load with one pre-encoded request. Each cell `--rounds` times, the systems in turn, each run
 *    started once all six members are quiet; one markdown table with the median HomeKV ÷ etcd.
 * 2. Memory: the RSS of every member at rest after that load.
 * 3. Failover: kill -9 of the leader → the first write acknowledged through a survivor, `--failovers`
 *    times per system (the killed member restarted in between), both with their default timeouts.
 * `--quick` is a smoke run (test/system/bench-cluster.system.ts). Every process it started is
 * stopped, on failure and on Ctrl-C too.
 */
import { cpus } from "node:os";
import { type BenchResult, runBench } from "../src/bench/run-bench.ts";
import { type BenchOp, createWorkload } from "../src/bench/workload.ts";
import { flag, median } from "./bench/args.ts";
import { type Placement, placedPool, prefill, targets } from "./bench/clients.ts";
import { type BenchCluster, startEtcdCluster, startHomekvCluster } from "./bench/cluster.ts";
import { loadAverage, SMOKE_QUIET } from "./bench/cpu.ts";
import { timeFailover } from "./bench/failover.ts";
import { type H2loadResult, h2loadChecked } from "./bench/h2load.ts";
import { settledRss } from "./bench/rss.ts";
import { ensureInstalled, stopAll, stopAllOnExit } from "./bench/servers.ts";
import { type Measured, measureInTurns } from "./bench/turns.ts";

const quick = process.argv.includes("--quick");
const durationMs = Number.parseFloat(flag("--duration", quick ? "0.1" : "5")) * 1000;
const warmupMs = Number.parseFloat(flag("--warmup", quick ? "0" : "1")) * 1000;
const concurrency = Number(flag("--concurrency", quick ? "8" : "64"));
const keys = Number(flag("--keys", quick ? "1000" : "100000"));
const valueSize = Number(flag("--value-size", "100"));
const failovers = Number(flag("--failovers", quick ? "1" : "5"));
const rounds = Number(flag("--rounds", quick ? "1" : "3"));
/** Runs that started although the servers had not gone quiet (cpuQuiet gave up). */
let notQuiet = 0;

interface Workload {
  name: string;
  op: BenchOp;
  batch: number;
}

const WORKLOADS: Workload[] = [
  { name: "set (1 key)", op: "set", batch: 1 },
  { name: "get (1 key, linearizable)", op: "get", batch: 1 },
  { name: "set (batch of 100)", op: "set", batch: 100 },
];

const workloadOf = (workload: Workload, cluster: BenchCluster, seed: number) =>
  createWorkload({ op: workload.op, keys, valueSize, batch: workload.batch, readRatio: 1, seed }, cluster.protocol);

async function drive(cluster: BenchCluster, workload: Workload, placement: Placement): Promise<BenchResult> {
  const pool = await placedPool(cluster, placement);
  try {
    const next = workloadOf(workload, cluster, 7);
    const result = await runBench({ pool, next, concurrency, durationMs, warmupMs });
    if (Object.keys(result.errors).length > 0)
      console.error(`  ${cluster.system} ${workload.name} on ${placement}: errors ${JSON.stringify(result.errors)}`);
    return result;
  } finally {
    pool.close();
  }
}

/** h2load with one request drawn from the same workload, checked to succeed first; streams split over the targets. */
async function driveH2load(cluster: BenchCluster, workload: Workload, placement: Placement): Promise<H2loadResult> {
  const addresses = await targets(cluster, placement);
  const result = await h2loadChecked(addresses, workloadOf(workload, cluster, 11)(), {
    streams: concurrency,
    durationMs,
    warmupMs,
  });
  if (result.failed > 0) console.error(`  h2load ${cluster.system} ${workload.name}: ${result.failed} failed`);
  return result;
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
const ms = (value: number) => value.toFixed(value >= 100 ? 0 : 2);
const mib = (bytes: number) => (bytes / 2 ** 20).toFixed(0);

async function throughputTable(homekv: BenchCluster, etcd: BenchCluster): Promise<void> {
  console.log(
    "| workload | clients on | load generator | HomeKV | etcd | HomeKV ÷ etcd | rounds | HomeKV latency ms | etcd latency ms |",
  );
  console.log("| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |");
  const per = (workload: Workload) => (workload.batch > 1 ? "keys/s" : "req/s");
  const systems = [homekv, etcd] as const;
  for (const workload of WORKLOADS) {
    for (const placement of ["leader", "spread"] as const) {
      const where = placement === "leader" ? "leader" : "all 3";
      const generators: [string, string, (cluster: BenchCluster) => Promise<Measured>][] = [
        [
          "src/bench",
          "p99",
          async (cluster) => {
            const result = await drive(cluster, workload, placement);
            return {
              rate: workload.batch > 1 ? result.keysPerSecond : result.requestsPerSecond,
              latencyMs: result.latencyUs.p99 / 1000,
            };
          },
        ],
        [
          "h2load",
          "mean",
          async (cluster) => {
            const result = await driveH2load(cluster, workload, placement);
            return { rate: result.requestsPerSecond * workload.batch, latencyMs: result.meanLatencyMs };
          },
        ],
      ];
      for (const [generator, latency, measure] of generators) {
        const pids = systems.flatMap((cluster) => cluster.members.map((member) => member.pid()));
        const cell = await measureInTurns(systems, rounds, pids, measure, quick ? SMOKE_QUIET : {});
        notQuiet += cell.notQuiet;
        console.log(
          `| ${workload.name} | ${where} | ${generator} | ${fmt(cell.first.rate)} ${per(workload)} | ${fmt(cell.second.rate)} | **${cell.ratio.toFixed(2)}×** | ${cell.ratios.map((ratio) => ratio.toFixed(2)).join(", ")} | ${latency} ${ms(cell.first.latencyMs)} | ${latency} ${ms(cell.second.latencyMs)} |`,
        );
      }
    }
  }
  if (notQuiet > 0) console.log(`\n${notQuiet} run(s) started before the servers were quiet (15 s without).`);
}

async function memoryTable(homekv: BenchCluster, etcd: BenchCluster): Promise<void> {
  const members = [...homekv.members, ...etcd.members];
  const { bytes, settled } = await settledRss(
    members.map((member) => member.pid()),
    quick
      ? { intervalMs: 250, windowMs: 500, tolerance: 0.02, waitMsMax: 1_000 }
      : { intervalMs: 500, windowMs: 5_000, tolerance: 0.02, waitMsMax: 30_000 },
  );
  console.log(`\nRSS of each member at rest after the load (MiB${settled ? "" : "; still moving when read"}):\n`);
  console.log(`| system | ${homekv.members.map((member) => member.name).join(" | ")} |`);
  console.log(`| --- |${" ---: |".repeat(homekv.members.length)}`);
  const n = homekv.members.length;
  console.log(`| HomeKV | ${bytes.slice(0, n).map(mib).join(" | ")} |`);
  console.log(`| etcd | ${bytes.slice(n).map(mib).join(" | ")} |`);
}

async function failoverTable(homekv: BenchCluster, etcd: BenchCluster): Promise<void> {
  console.log(
    `\nFailover: kill -9 of the leader → first write acknowledged through a survivor (a write started every 5 ms), ${failovers} runs each:\n`,
  );
  console.log("| system | median ms | max ms | runs ms |");
  console.log("| --- | ---: | ---: | --- |");
  for (const cluster of [homekv, etcd]) {
    const runs: number[] = [];
    for (let run = 0; run < failovers; run++) runs.push(await timeFailover(cluster, run));
    const label = cluster.system === "HomeKV" ? "HomeKV (--raft-tick 100ms)" : "etcd (defaults)";
    console.log(
      `| ${label} | ${median(runs).toFixed(0)} | ${Math.max(...runs).toFixed(0)} | ${runs.map((run) => run.toFixed(0)).join(", ")} |`,
    );
  }
}

async function main(): Promise<void> {
  stopAllOnExit();
  ensureInstalled(["etcd", "h2load"]);
  const etcdVersion = Bun.spawnSync(["etcd", "--version"]).stdout.toString().split("\n")[0];
  console.log(
    `# 3-member HomeKV vs 3-member etcd — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${etcdVersion}`,
  );
  console.log(`load average at the start: ${loadAverage()}`);
  console.log(
    `${keys} keys, ${valueSize}-byte values, ${concurrency} in flight, ${durationMs / 1000} s per run after ${warmupMs / 1000} s of warm-up, ${rounds} round(s) per cell, the systems in turn, each run on quiet servers (all six members under 15% of a core); one HTTP/2 connection per member a run uses; figures are medians over the rounds\n`,
  );
  const homekv = await startHomekvCluster();
  const etcd = await startEtcdCluster();
  await prefill(homekv, { keys, valueSize });
  await prefill(etcd, { keys, valueSize });
  await throughputTable(homekv, etcd);
  await memoryTable(homekv, etcd);
  await failoverTable(homekv, etcd);
  console.log(`\nload average at the end: ${loadAverage()}`);
  await Promise.all([homekv.stop(), etcd.stop()]);
}

try {
  await main();
} finally {
  await stopAll();
}

#!/usr/bin/env bun
/**
 * HomeKV beside etcd and Redis on this machine, in one run, as ratios.
 *
 *   bun scripts/bench-compare.ts [--duration 5s] [--warmup 1s] [--rounds 3] [--concurrency 1,16,64] [--keys 100000] [--value-size 100]
 *     [--engine memory|flsm] [--memtable-bytes N] [--quick]
 *
 * Installs etcd and Redis from Debian when missing, starts all three on loopback with comparable
 * durability (an fsync per commit: HomeKV --fsync always, etcd's default, Redis appendfsync always),
 * runs the same workloads against each and prints one markdown table. HomeKV and etcd are driven by
 * the same in-process load generator (src/bench), and at the highest concurrency also by nghttp2's
 * h2load (a client that shares no code with HomeKV, and is lighter than ours, so that the client's
 * CPU is not what limits the comparison; it repeats one request: one hot key, or the same batch);
 * Redis by redis-benchmark, as the reference for protocol overhead. Each HomeKV and etcd cell runs
 * --rounds times, the two in turn, each run on quiet servers, and shows the median ratio and each
 * round's; each run sends requests for --warmup before it measures, so that a JIT's first seconds
 * are not counted against HomeKV. Every server it started is stopped, on failure and on Ctrl-C too.
 * `--engine flsm` runs HomeKV on its disk engine (etcd keeps its data on disk too), with
 * `--memtable-bytes` passed on, so that a small keyspace still reaches the tables.
 * `--quick` is a smoke run (the test suite uses it).
 */
import { cpus } from "node:os";
import { connectH2Pool } from "../src/bench/h2-unary.ts";
import { type BenchResult, runBench } from "../src/bench/run-bench.ts";
import {
  type BenchOp,
  type BenchProtocol,
  createWorkload,
  homekvProtocol,
  prefillRequests,
} from "../src/bench/workload.ts";
import { flag } from "./bench/args.ts";
import { SMOKE_QUIET } from "./bench/cpu.ts";
import { etcdProtocol } from "./bench/etcd-protocol.ts";
import { h2loadChecked } from "./bench/h2load.ts";
import { redisBenchmark, redisPrefill } from "./bench/redis-benchmark.ts";
import {
  ensureInstalled,
  type RunningServer,
  startEtcd,
  startHomekv,
  startRedis,
  stopAll,
  stopAllOnExit,
} from "./bench/servers.ts";
import { type Measured, measureInTurns } from "./bench/turns.ts";

const quick = process.argv.includes("--quick");
const durationMs = Number.parseFloat(flag("--duration", quick ? "0.1" : "5")) * 1000;
const warmupMs = Number.parseFloat(flag("--warmup", quick ? "0" : "1")) * 1000;
const concurrencies = flag("--concurrency", quick ? "1,4" : "1,16,64")
  .split(",")
  .map(Number);
const keys = Number(flag("--keys", quick ? "1000" : "100000"));
const valueSize = Number(flag("--value-size", "100"));
const rounds = Number(flag("--rounds", quick ? "1" : "3"));
const quiet = quick ? SMOKE_QUIET : {};
const engine = flag("--engine", "memory");
if (engine !== "memory" && engine !== "flsm") throw new Error(`--engine must be memory or flsm, not ${engine}`);
const memtableBytes = flag("--memtable-bytes", "");
const homekvArgs = ["--engine", engine, ...(memtableBytes === "" ? [] : ["--memtable-bytes", memtableBytes])];

interface Workload {
  name: string;
  op: BenchOp;
  batch: number;
  prefill: boolean;
  redis: "get" | "set" | "mset100" | "mixed";
}

const WORKLOADS: Workload[] = [
  { name: "get (1 key)", op: "get", batch: 1, prefill: true, redis: "get" },
  { name: "set (1 key)", op: "set", batch: 1, prefill: false, redis: "set" },
  { name: "set (batch of 100)", op: "set", batch: 100, prefill: false, redis: "mset100" },
  { name: "mixed 90% get / 10% set", op: "mixed", batch: 1, prefill: true, redis: "mixed" },
];

async function prefill(server: RunningServer, protocol: BenchProtocol): Promise<void> {
  const pool = connectH2Pool(server.address, 1);
  try {
    // 100 keys per request: within etcd's default --max-txn-ops (128).
    for (const { path, message } of prefillRequests({ keys, valueSize }, 100, protocol)) {
      const result = await pool.call(path, message);
      if (result.status !== 0) throw new Error(`prefill of ${server.name} failed: ${result.message}`);
    }
  } finally {
    pool.close();
  }
}

async function drive(
  server: RunningServer,
  protocol: BenchProtocol,
  workload: Workload,
  concurrency: number,
  ratePerSecond?: number,
): Promise<BenchResult> {
  const pool = connectH2Pool(server.address, 1);
  try {
    const next = createWorkload(
      { op: workload.op, keys, valueSize, batch: workload.batch, readRatio: 0.9, seed: 7 },
      protocol,
    );
    const result = await runBench({ pool, next, concurrency, durationMs, warmupMs, ratePerSecond });
    const errors = Object.entries(result.errors);
    if (errors.length > 0)
      console.error(`  ${server.name} ${workload.name} c=${concurrency}: errors ${JSON.stringify(result.errors)}`);
    return result;
  } finally {
    pool.close();
  }
}

/** h2load on one connection with `concurrency` streams, repeating one request of the workload, checked to succeed first. */
async function driveH2load(
  server: RunningServer,
  protocol: BenchProtocol,
  workload: Workload,
  concurrency: number,
): Promise<Measured> {
  const request = createWorkload(
    { op: workload.op, keys, valueSize, batch: workload.batch, readRatio: 0.9, seed: 11 },
    protocol,
  )();
  const result = await h2loadChecked([server.address], request, { streams: concurrency, durationMs, warmupMs });
  if (result.failed > 0) console.error(`  h2load ${server.name} ${workload.name}: ${result.failed} failed`);
  return { rate: result.requestsPerSecond * workload.batch, latencyMs: result.meanLatencyMs };
}

function redisRun(server: RunningServer, workload: Workload, concurrency: number): number {
  const requests = Math.max(
    quick ? 500 : 2_000,
    Math.round((quick ? 500 : 20_000) * Math.sqrt(concurrency)) / (workload.batch > 1 ? 10 : 1),
  );
  const run = (command: "get" | "set" | "mset100") =>
    redisBenchmark({ port: server.port, concurrency, requests, keys, valueSize, command });
  if (workload.redis !== "mixed") return run(workload.redis).requestsPerSecond * workload.batch;
  // redis-benchmark cannot mix: the throughput a 90/10 mix would have, from the two alone.
  return 1 / (0.9 / run("get").requestsPerSecond + 0.1 / run("set").requestsPerSecond);
}

function printCell(
  workload: Workload,
  concurrency: number,
  generator: string,
  latency: string,
  cell: Awaited<ReturnType<typeof measureInTurns>>,
  redisColumns: string,
): void {
  const ratios = cell.ratios.map((ratio) => ratio.toFixed(2)).join(", ");
  console.log(
    `| ${workload.name} | ${concurrency} | ${generator} | ${fmt(cell.first.rate)} | ${fmt(cell.second.rate)} | **${cell.ratio.toFixed(2)}×** | ${ratios} | ${latency} ${ms(cell.first.latencyMs)} | ${latency} ${ms(cell.second.latencyMs)} | ${redisColumns} |`,
  );
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
const ms = (value: number) => value.toFixed(2);

async function main(): Promise<void> {
  stopAllOnExit();
  ensureInstalled(["etcd", "redis-server", "redis-benchmark", "redis-cli", "h2load"]);
  console.log(
    `# HomeKV vs etcd vs Redis — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}`,
  );
  console.log(
    `HomeKV ${homekvArgs.join(" ")}; ${keys} keys, ${valueSize}-byte values, ${durationMs / 1000} s per run after ${warmupMs / 1000} s of warm-up, ${rounds} round(s) per cell, HomeKV and etcd in turn, each run on quiet servers (under 15% of a core); one HTTP/2 connection per gRPC run; keys/s for batches; figures are medians over the rounds\n`,
  );
  const [homekv, etcd, redis] = [await startHomekv(homekvArgs), await startEtcd(), await startRedis()];
  await prefill(homekv, homekvProtocol);
  await prefill(etcd, etcdProtocol);
  redisPrefill(redis.port, keys, valueSize);

  console.log(
    "| workload | in flight | load generator | HomeKV | etcd | HomeKV / etcd | rounds | HomeKV latency ms | etcd latency ms | Redis | HomeKV / Redis |",
  );
  console.log("| --- | ---: | --- | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: |");
  const pids = [homekv.pid, etcd.pid, redis.pid];
  const protocolOf = (server: RunningServer) => (server === homekv ? homekvProtocol : etcdProtocol);
  const most = Math.max(...concurrencies);
  const saturated = new Map<string, number>();
  let notQuiet = 0;
  for (const workload of WORKLOADS) {
    for (const concurrency of concurrencies) {
      const cell = await measureInTurns(
        [homekv, etcd] as const,
        rounds,
        pids,
        async (server) => {
          const result = await drive(server, protocolOf(server), workload, concurrency);
          const rate = workload.batch > 1 ? result.keysPerSecond : result.requestsPerSecond;
          return { rate, latencyMs: result.latencyUs.p99 / 1000 };
        },
        quiet,
      );
      notQuiet += cell.notQuiet;
      const r = redisRun(redis, workload, concurrency);
      saturated.set(workload.name, Math.max(saturated.get(workload.name) ?? 0, cell.second.rate / workload.batch));
      printCell(workload, concurrency, "src/bench", "p99", cell, `${fmt(r)} | ${(cell.first.rate / r).toFixed(2)}×`);
      // h2load repeats one request, which a mix cannot be.
      if (concurrency !== most || workload.op === "mixed") continue;
      const h2 = await measureInTurns(
        [homekv, etcd] as const,
        rounds,
        pids,
        (server) => driveH2load(server, protocolOf(server), workload, concurrency),
        quiet,
      );
      notQuiet += h2.notQuiet;
      printCell(workload, concurrency, "h2load", "mean", h2, "— | —");
    }
  }
  if (notQuiet > 0) console.log(`\n${notQuiet} run(s) started before the servers were quiet (15 s without).`);

  console.log("\np99 at half of etcd's saturated load (open loop, latency counted from when each request was due):\n");
  console.log("| workload | rate (req/s) | HomeKV p99 ms | etcd p99 ms | HomeKV p50 ms | etcd p50 ms |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  for (const workload of WORKLOADS.filter((w) => w.batch === 1 && w.op !== "mixed")) {
    const rate = Math.max(1, Math.round(saturated.get(workload.name)! / 2));
    const h = await drive(homekv, homekvProtocol, workload, most, rate);
    const e = await drive(etcd, etcdProtocol, workload, most, rate);
    console.log(
      `| ${workload.name} | ${rate} | ${ms(h.latencyUs.p99 / 1000)} | ${ms(e.latencyUs.p99 / 1000)} | ${ms(h.latencyUs.p50 / 1000)} | ${ms(e.latencyUs.p50 / 1000)} |`,
    );
  }
}

try {
  await main();
} finally {
  await stopAll();
}

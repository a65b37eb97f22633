#!/usr/bin/env bun
/**
 * HomeKV beside etcd and Redis on this machine, in one run, as ratios.
 *
 *   bun scripts/bench-compare.ts [--duration 5s] [--warmup 1s] [--concurrency 1,16,64] [--keys 100000] [--value-size 100] [--quick]
 *
 * Installs etcd and Redis from Debian when missing, starts all three on loopback with comparable
 * durability (an fsync per commit: HomeKV --fsync always, etcd's default, Redis appendfsync always),
 * runs the same workloads against each and prints one markdown table. HomeKV and etcd are driven by
 * the same in-process load generator (src/bench); Redis by redis-benchmark, as the reference for
 * protocol overhead. Each HomeKV and etcd cell sends requests for --warmup before it measures, so
 * that a JIT's first seconds are not counted against HomeKV. Every server it started is stopped, on
 * failure and on Ctrl-C too.
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
import { etcdProtocol } from "./bench/etcd-protocol.ts";
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

const quick = process.argv.includes("--quick");
const durationMs = Number.parseFloat(flag("--duration", quick ? "0.3" : "5")) * 1000;
const warmupMs = Number.parseFloat(flag("--warmup", quick ? "0" : "1")) * 1000;
const concurrencies = flag("--concurrency", quick ? "1,4" : "1,16,64")
  .split(",")
  .map(Number);
const keys = Number(flag("--keys", quick ? "1000" : "100000"));
const valueSize = Number(flag("--value-size", "100"));

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

function redisRun(server: RunningServer, workload: Workload, concurrency: number): number {
  const requests = Math.max(
    2_000,
    Math.round((quick ? 2_000 : 20_000) * Math.sqrt(concurrency)) / (workload.batch > 1 ? 10 : 1),
  );
  const run = (command: "get" | "set" | "mset100") =>
    redisBenchmark({ port: server.port, concurrency, requests, keys, valueSize, command });
  if (workload.redis !== "mixed") return run(workload.redis).requestsPerSecond * workload.batch;
  // redis-benchmark cannot mix: the throughput a 90/10 mix would have, from the two alone.
  return 1 / (0.9 / run("get").requestsPerSecond + 0.1 / run("set").requestsPerSecond);
}

const fmt = (n: number) => (n >= 100 ? Math.round(n).toLocaleString("en-US") : n.toFixed(1));
const ms = (us: number) => (us / 1000).toFixed(2);

async function main(): Promise<void> {
  stopAllOnExit();
  ensureInstalled();
  console.log(
    `# HomeKV vs etcd vs Redis — ${new Date().toISOString().slice(0, 10)}, ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}`,
  );
  console.log(
    `${keys} keys, ${valueSize}-byte values, ${durationMs / 1000} s per cell, one HTTP/2 connection per gRPC run; keys/s for batches\n`,
  );
  const [homekv, etcd, redis] = [await startHomekv(), await startEtcd(), await startRedis()];
  await prefill(homekv, homekvProtocol);
  await prefill(etcd, etcdProtocol);
  redisPrefill(redis.port, keys, valueSize);

  console.log(
    "| workload | in flight | HomeKV | etcd | HomeKV / etcd | HomeKV p99 ms | etcd p99 ms | Redis | HomeKV / Redis |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  const saturated = new Map<string, number>();
  for (const workload of WORKLOADS) {
    for (const concurrency of concurrencies) {
      const h = await drive(homekv, homekvProtocol, workload, concurrency);
      const e = await drive(etcd, etcdProtocol, workload, concurrency);
      const r = redisRun(redis, workload, concurrency);
      const rate = (result: BenchResult) => (workload.batch > 1 ? result.keysPerSecond : result.requestsPerSecond);
      saturated.set(workload.name, Math.max(saturated.get(workload.name) ?? 0, e.requestsPerSecond));
      console.log(
        `| ${workload.name} | ${concurrency} | ${fmt(rate(h))} | ${fmt(rate(e))} | **${(rate(h) / rate(e)).toFixed(2)}×** | ${ms(h.latencyUs.p99)} | ${ms(e.latencyUs.p99)} | ${fmt(r)} | ${(rate(h) / r).toFixed(2)}× |`,
      );
    }
  }

  console.log("\np99 at half of etcd's saturated load (open loop, latency counted from when each request was due):\n");
  console.log("| workload | rate (req/s) | HomeKV p99 ms | etcd p99 ms | HomeKV p50 ms | etcd p50 ms |");
  console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
  const most = Math.max(...concurrencies);
  for (const workload of WORKLOADS.filter((w) => w.batch === 1 && w.op !== "mixed")) {
    const rate = Math.max(1, Math.round(saturated.get(workload.name)! / 2));
    const h = await drive(homekv, homekvProtocol, workload, most, rate);
    const e = await drive(etcd, etcdProtocol, workload, most, rate);
    console.log(
      `| ${workload.name} | ${rate} | ${ms(h.latencyUs.p99)} | ${ms(e.latencyUs.p99)} | ${ms(h.latencyUs.p50)} | ${ms(e.latencyUs.p50)} |`,
    );
  }
}

try {
  await main();
} finally {
  await stopAll();
}

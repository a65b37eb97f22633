#!/usr/bin/env bun
/**
 * Set latency through the server on each engine, under a sustained load that makes the FLSM engine
 * flush and compact (issue: its p99.9 within 3× of the memory engine's):
 *
 *   bun scripts/bench-engine-latency.ts [--keys 1000000] [--duration 30] [--concurrency 64]
 *     [--batch 1] [--rounds 2] [--memtable-bytes 16777216] [--quick]
 *
 * Each round starts `homekv serve` on the memory engine and on `--engine flsm` (small memtables, so
 * that the run flushes many and compacts level 0 again and again), each on a fresh data directory
 * with --fsync always, one after the other, and drives each with the same closed-loop load (src/bench:
 * `--concurrency` Sets in flight of `--batch` random keys among `--keys`, 100-byte values, 2 s of
 * warm-up not counted). It prints each run's rate and latency percentiles, what the FLSM engine
 * did meanwhile (flushes, compactions, stalls, from /metrics), and FLSM ÷ memory per measure (the
 * median over rounds). `--quick` is a smoke run (test/system/bench-engine-latency.system.ts).
 */
import { connectH2Pool } from "../src/bench/h2-unary.ts";
import { type BenchResult, runBench } from "../src/bench/run-bench.ts";
import { createWorkload } from "../src/bench/workload.ts";
import { parseExposition } from "../test/discovery/parse-exposition.ts";
import { flag, median } from "./bench/args.ts";
import { freePort, startHomekv, stopAll, stopAllOnExit } from "./bench/servers.ts";

const quick = process.argv.includes("--quick");
const keys = Number(flag("--keys", quick ? "20000" : "1000000"));
const durationS = Number(flag("--duration", quick ? "1" : "30"));
const concurrency = Number(flag("--concurrency", "64"));
const batch = Number(flag("--batch", "1"));
const rounds = Number(flag("--rounds", quick ? "1" : "2"));
const memtableBytes = Number(flag("--memtable-bytes", quick ? String(256 * 1024) : String(16 * 1024 * 1024)));
const WARMUP_MS = quick ? 300 : 2_000;
const VALUE_BYTES = 100;

for (const [name, value] of Object.entries({ keys, durationS, concurrency, batch, rounds, memtableBytes }))
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not ${value}`);

const ENGINES = ["memory", "flsm"] as const;
type EngineName = (typeof ENGINES)[number];

/** What the FLSM engine did during a run, from its /metrics. */
interface EngineWork {
  flushes: number;
  compactions: number;
  stoppedGroups: number;
  slowedGroups: number;
  stoppedSeconds: number;
}

async function engineWork(httpPort: number): Promise<EngineWork> {
  const exposition = parseExposition(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
  const value = (name: string) => exposition.value(name) ?? 0;
  return {
    flushes: value("homekv_memtable_flushes_total"),
    compactions: value("homekv_flsm_compactions_total"),
    stoppedGroups: value("homekv_flsm_stopped_write_groups_total"),
    slowedGroups: value("homekv_flsm_slowed_write_groups_total"),
    stoppedSeconds: value("homekv_flsm_write_stopped_seconds_total"),
  };
}

async function measure(engine: EngineName, round: number): Promise<{ result: BenchResult; work?: EngineWork }> {
  const httpPort = freePort();
  const engineArgs = engine === "flsm" ? ["--engine", "flsm", "--memtable-bytes", String(memtableBytes)] : [];
  const server = await startHomekv([...engineArgs, "--http-port", String(httpPort)]);
  try {
    const pool = connectH2Pool(server.address, 1);
    const next = createWorkload({ op: "set", keys, valueSize: VALUE_BYTES, batch, readRatio: 0, seed: round + 1 });
    const result = await runBench({ pool, next, concurrency, durationMs: durationS * 1000, warmupMs: WARMUP_MS });
    pool.close();
    if (Object.keys(result.errors).length > 0)
      throw new Error(`${engine}: requests failed ${JSON.stringify(result.errors)}`);
    return engine === "flsm" ? { result, work: await engineWork(httpPort) } : { result };
  } finally {
    await server.stop();
  }
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });
const ms = (us: number) => fmt(us / 1000, 2);

stopAllOnExit();
try {
  console.log(`# Set latency, memory engine vs flsm — ${new Date().toISOString().slice(0, 10)}`);
  console.log(
    `${concurrency} in flight, ${batch} key(s) per Set among ${fmt(keys)}, ${VALUE_BYTES}-byte values, ${durationS} s a run ` +
      `after ${WARMUP_MS / 1000} s of warm-up, --fsync always; flsm --memtable-bytes ${fmt(memtableBytes)}\n`,
  );
  console.log(
    "| round | engine | sets/s | p50 ms | p99 ms | p99.9 ms | max ms | flushes | compactions | stopped groups (s) | slowed groups |",
  );
  console.log("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
  const byEngine: Record<EngineName, BenchResult[]> = { memory: [], flsm: [] };
  for (let round = 1; round <= rounds; round++)
    for (const engine of ENGINES) {
      const { result, work } = await measure(engine, round);
      byEngine[engine].push(result);
      const { latencyUs: l } = result;
      const workCells = work
        ? [
            fmt(work.flushes),
            fmt(work.compactions),
            `${fmt(work.stoppedGroups)} (${fmt(work.stoppedSeconds, 2)})`,
            fmt(work.slowedGroups),
          ]
        : ["", "", "", ""];
      console.log(
        `| ${round} | ${engine} | ${fmt(result.keysPerSecond)} | ${ms(l.p50)} | ${ms(l.p99)} | ${ms(l.p999)} | ${ms(l.max)} | ${workCells.join(" | ")} |`,
      );
    }
  console.log("\n| measure | flsm ÷ memory (median of rounds) |\n|---|---:|");
  const ratio = (of: (result: BenchResult) => number) =>
    median(byEngine.flsm.map(of)) / median(byEngine.memory.map(of));
  console.log(
    `| sets/s | **${fmt(
      ratio((r) => r.keysPerSecond),
      2,
    )}×** |`,
  );
  for (const [name, pick] of [
    ["p50", (r: BenchResult) => r.latencyUs.p50],
    ["p99", (r: BenchResult) => r.latencyUs.p99],
    ["p99.9", (r: BenchResult) => r.latencyUs.p999],
  ] as const)
    console.log(`| ${name} | **${fmt(ratio(pick), 2)}×** |`);
} finally {
  await stopAll();
}

#!/usr/bin/env bun
/**
 * What partitioning costs, on this machine, in one run:
 *
 *   bun scripts/bench-partitions.ts [--seconds 5] [--warmup 1] [--keys 10000] [--json] [--quick]
 *
 * 1. On a 3-node cluster (--partitions 16 --replicas 3): a Set of 10 keys that all fall in one
 *    partition (one round on its leader) against a Set of 10 keys in 10 partitions (two-phase:
 *    prewrite on each, then the primary's commit, then the secondaries'), 1 and 32 in flight.
 *    Keys are picked with partitionOf, each partition's from a pool of its own taken in turn, so
 *    that Sets in flight at once never share a key (they would take turns); the partition (or the
 *    first of the 10) turns with each request, so every partition's leader gets its share.
 * 2. Single-key Set and linearizable Get, 64 in flight over `--keys` keys (filled first), on 1, 3
 *    and 5 nodes (--partitions 16, --replicas min(3, N)) and on one plain `homekv serve --data-dir`
 *    (the baseline): ops/s, each process's CPU (utime + stime from /proc/PID/stat over the run, in
 *    cores) and ops/s per core the servers used.
 *
 * 3. A client that is not ours: nghttp2's h2load sending one pre-encoded request over and over, a
 *    Set of one key (a hot key) or a Get of it, 64 streams spread over the nodes, on the 3-node
 *    cluster and on the plain server (h2load is installed from Debian when missing).
 *
 * The first two tables also show the load generator's CPU and what the rest of the machine ran during each
 * cell (/proc/stat less this run's processes): on a shared machine, other work takes cores from it.
 *
 * Every server fsyncs each commit (the partitions' Raft logs always do; the plain server's default
 * --fsync always) and runs the default --raft-tick. The clients (this project's load generator,
 * src/bench, in this process) hold one HTTP/2 connection to each node, calls dealt in turn; any
 * node takes any request and reaches the partitions' leaders itself. Each cell sends requests for
 * --warmup uncounted, then is measured for --seconds, starting once the servers are quiet. All of
 * it shares this machine's cores: a cluster's nodes and the client take turns on them, so the
 * multi-node rows show the overhead of more nodes, not their scaling. A markdown table per part;
 * `--json` adds one line with every figure. Every process is stopped and every data directory
 * removed, on failure and on Ctrl-C too. `--quick` is a smoke run
 * (test/system/bench-partitions.system.ts).
 */
import { cpus } from "node:os";
import { connectH2Pool } from "../src/bench/h2-unary.ts";
import { runBench } from "../src/bench/run-bench.ts";
import { type BenchRequest, createWorkload, homekvProtocol, prefillRequests } from "../src/bench/workload.ts";
import { checkArguments, flag, integerFlag } from "./bench/args.ts";
import { roundRobin } from "./bench/clients.ts";
import { cpuQuiet, cpuSeconds, loadAverage, machineBusySeconds, SMOKE_QUIET } from "./bench/cpu.ts";
import { h2loadChecked } from "./bench/h2load.ts";
import { type BenchServers, keysByPartition, startPartitionedCluster, startSingleServer } from "./bench/partitioned.ts";
import { ensureInstalled, stopAll, stopAllOnExit } from "./bench/servers.ts";

checkArguments(process.argv.slice(2), ["--seconds", "--warmup", "--keys"], ["--quick", "--json"]);
const quick = process.argv.includes("--quick");
const json = process.argv.includes("--json");
const seconds = Number.parseFloat(flag("--seconds", quick ? "0.3" : "5"));
const warmupSeconds = Number.parseFloat(flag("--warmup", quick ? "0" : "1"));
if (!(seconds > 0) || !(warmupSeconds >= 0)) throw new Error("--seconds must be above 0 and --warmup at least 0");
const keys = integerFlag("--keys", flag("--keys", quick ? "1000" : "10000"), 100);

const PARTITIONS = 16;
const VALUE_SIZE = 100;
const VALUE = new Uint8Array(VALUE_SIZE).fill(120);
/** Keys per Set in part 1, each in its own partition when the Set crosses partitions. */
const SET_KEYS = 10;
const SET_CONCURRENCIES = [1, 32];
const SCALE_CONCURRENCY = 64;
const NODE_COUNTS = [1, 3, 5];
/**
 * Part 1's keys per partition: 32 Sets of 10 keys in flight hold some 20 keys of a partition at
 * once, so a pool this size, taken in turn, never gives two of them the same key.
 */
const POOL_PER_PARTITION = 2_000;
/** A measured run also stops after this many requests (none of ours gets near it in its seconds). */
const REQUESTS_MAX = 10_000_000;
/** Runs that started before the servers had gone quiet (cpuQuiet gave up after 15 s). */
let notQuiet = 0;

interface Figures {
  /** Requests that succeeded, per second. */
  opsPerSecond: number;
  p50Ms: number;
  p99Ms: number;
  failed: number;
  /** CPU each server process used over the run, in cores (CPU seconds ÷ wall seconds), in member order. */
  memberCores: number[];
  serverCores: number;
  /** This process's: the load generator. */
  clientCores: number;
  /** What the rest of the machine ran meanwhile (other work on this shared machine), in cores. */
  othersCores: number;
  opsPerServerCore: number;
  /** All servers' CPU per successful request. */
  serverCpuUsPerOp: number;
}

/** One cell: `next`'s requests, `concurrency` in flight over one connection to each member. */
async function measure(
  servers: BenchServers,
  next: () => BenchRequest,
  concurrency: number,
  keysPerOp: number,
): Promise<Figures> {
  const pool = roundRobin(servers.members.map((member) => connectH2Pool(member.address, 1)));
  try {
    const pids = servers.members.map((member) => member.pid);
    if (!(await cpuQuiet(pids, quick ? SMOKE_QUIET : {}))) notQuiet++;
    if (warmupSeconds > 0) await runBench({ pool, next, concurrency, durationMs: warmupSeconds * 1000 });
    const cpuBefore = pids.map(cpuSeconds);
    const clientBefore = process.cpuUsage();
    const machineBefore = machineBusySeconds();
    const started = performance.now();
    const result = await runBench({ pool, next, concurrency, durationMs: seconds * 1000, requests: REQUESTS_MAX });
    const wallSeconds = (performance.now() - started) / 1000;
    const memberCores = pids.map((pid, i) => (cpuSeconds(pid) - cpuBefore[i]!) / wallSeconds);
    const client = process.cpuUsage(clientBefore);
    const machineCores = (machineBusySeconds() - machineBefore) / wallSeconds;
    const serverCores = memberCores.reduce((a, b) => a + b, 0);
    const clientCores = (client.user + client.system) / 1e6 / wallSeconds;
    const ok = result.keys / keysPerOp;
    const opsPerSecond = ok / (result.elapsedMs / 1000);
    return {
      opsPerSecond,
      p50Ms: result.latencyUs.p50 / 1000,
      p99Ms: result.latencyUs.p99 / 1000,
      failed: result.requests - ok,
      memberCores,
      serverCores,
      clientCores,
      // The clock ticks of /proc round each figure: never below none.
      othersCores: Math.max(0, machineCores - serverCores - clientCores),
      opsPerServerCore: opsPerSecond / serverCores,
      serverCpuUsPerOp: ok > 0 ? (serverCores * wallSeconds * 1e6) / ok : 0,
    };
  } finally {
    pool.close();
  }
}

/**
 * Sets of SET_KEYS keys, request i's in `partitionsOf(i)` (one key from each partition named),
 * each partition's keys taken in turn from its pool.
 */
function setsOfTen(pools: string[][], partitionsOf: (request: number) => number[]): () => BenchRequest {
  const cursors = pools.map((pool) => ({ pool, taken: 0 }));
  const take = (partition: number) => {
    const cursor = cursors[partition]!;
    return cursor.pool[cursor.taken++ % cursor.pool.length]!;
  };
  let request = 0;
  return () => {
    const chosen = partitionsOf(request++).map(take);
    return { kind: "set", ...homekvProtocol.set(chosen, VALUE), keys: chosen.length };
  };
}

const SET_SHAPES = [
  { name: "one partition", partitionsOf: (i: number) => Array<number>(SET_KEYS).fill(i % PARTITIONS) },
  {
    name: `${SET_KEYS} partitions`,
    partitionsOf: (i: number) => Array.from({ length: SET_KEYS }, (_, j) => (i + j) % PARTITIONS),
  },
] as const;

interface SetCell extends Figures {
  keys: string;
  concurrency: number;
}

async function crossPartitionPart(cluster: BenchServers): Promise<SetCell[]> {
  const pools = keysByPartition(PARTITIONS, POOL_PER_PARTITION, "ten/");
  const cells: SetCell[] = [];
  for (const concurrency of SET_CONCURRENCIES)
    for (const shape of SET_SHAPES) {
      progress(`part 1: Set of ${SET_KEYS} keys in ${shape.name}, ${concurrency} in flight`);
      const figures = await measure(cluster, setsOfTen(pools, shape.partitionsOf), concurrency, SET_KEYS);
      cells.push({ keys: shape.name, concurrency, ...figures });
    }
  return cells;
}

interface ScaleCell extends Figures {
  servers: string;
  /** 0 for the single server. */
  nodes: number;
  replicas: number;
  /** Partitions each node led at the start. */
  led: number[];
  op: "set" | "get";
  /** ops/s ÷ the single server's for the same op. */
  ofSingle: number;
}

/** Writes every key of the keyspace once (100 keys a Set, 8 at a time), so that Gets find values. */
async function prefill(servers: BenchServers): Promise<void> {
  const requests = prefillRequests({ keys, valueSize: VALUE_SIZE }, 100);
  const next = (): BenchRequest => {
    const request = requests.next();
    if (request.done) throw new Error("prefill ran past the keyspace");
    return { kind: "set", ...request.value, keys: 100 };
  };
  const pool = roundRobin(servers.members.map((member) => connectH2Pool(member.address, 1)));
  try {
    const result = await runBench({ pool, next, concurrency: 8, requests: Math.ceil(keys / 100) });
    if (Object.keys(result.errors).length > 0)
      throw new Error(`prefill of ${servers.label}: ${JSON.stringify(result.errors)}`);
  } finally {
    pool.close();
  }
}

async function scalePart(servers: BenchServers, nodes: number, replicas: number): Promise<ScaleCell[]> {
  await prefill(servers);
  const cells: ScaleCell[] = [];
  for (const op of ["set", "get"] as const) {
    progress(`part 2: single-key ${op} on ${servers.label}, ${SCALE_CONCURRENCY} in flight`);
    const next = createWorkload({ op, keys, valueSize: VALUE_SIZE, batch: 1, readRatio: 1, seed: 7 });
    const figures = await measure(servers, next, SCALE_CONCURRENCY, 1);
    cells.push({ servers: servers.label, nodes, replicas, led: servers.led, op, ofSingle: 0, ...figures });
  }
  return cells;
}

interface NeutralCell {
  servers: string;
  op: "set" | "get";
  opsPerSecond: number;
  meanMs: number;
  failed: number;
}

/** Part 3: h2load's Set of one hot key, then its Get, SCALE_CONCURRENCY streams spread over the members. */
async function neutralPart(servers: BenchServers): Promise<NeutralCell[]> {
  const cells: NeutralCell[] = [];
  for (const op of ["set", "get"] as const) {
    progress(`part 3: h2load, ${op} of one hot key on ${servers.label}`);
    const request = op === "set" ? homekvProtocol.set(["hot/key"], VALUE) : homekvProtocol.get(["hot/key"]);
    const result = await h2loadChecked(
      servers.members.map((member) => member.address),
      request,
      { streams: SCALE_CONCURRENCY, durationMs: seconds * 1000, warmupMs: warmupSeconds * 1000 },
    );
    cells.push({
      servers: servers.label,
      op,
      opsPerSecond: result.requestsPerSecond,
      meanMs: result.meanLatencyMs,
      failed: result.failed,
    });
  }
  return cells;
}

/** Starts the servers, runs `body` on them, and stops them whatever happens. */
async function withServers<T>(start: Promise<BenchServers>, body: (servers: BenchServers) => Promise<T>): Promise<T> {
  const servers = await start;
  try {
    return await body(servers);
  } finally {
    await servers.stop();
  }
}

/** Where the run is, on stderr: the tables come at the end. */
const progress = (line: string) => console.error(`[${new Date().toISOString().slice(11, 19)}] ${line}`);

const rate = (n: number) => Math.round(n).toLocaleString("en-US");
const ms = (n: number) => n.toFixed(n >= 100 ? 0 : 2);
const cores = (n: number) => n.toFixed(2);

function printSetTable(cells: readonly SetCell[]): void {
  console.log(
    `\n## 1. A Set of ${SET_KEYS} keys: one partition vs ${SET_KEYS} partitions (3 nodes, --partitions ${PARTITIONS} --replicas 3)\n`,
  );
  console.log(
    "| keys in | in flight | ops/s | ÷ one partition | p50 ms | p99 ms | servers' CPU µs/op | servers' cores | client cores | others' cores | ops/s per server core | failed |",
  );
  console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |");
  for (const cell of cells) {
    const one = cells.find((other) => other.concurrency === cell.concurrency && other.keys === SET_SHAPES[0].name)!;
    console.log(
      `| ${cell.keys} | ${cell.concurrency} | ${rate(cell.opsPerSecond)} | ${(cell.opsPerSecond / one.opsPerSecond).toFixed(2)} | ${ms(cell.p50Ms)} | ${ms(cell.p99Ms)} | ${rate(cell.serverCpuUsPerOp)} | ${cores(cell.serverCores)} | ${cores(cell.clientCores)} | ${cores(cell.othersCores)} | ${rate(cell.opsPerServerCore)} | ${cell.failed} |`,
    );
  }
}

function printScaleTable(cells: readonly ScaleCell[]): void {
  console.log(
    `\n## 2. Single-key Set and Get, ${SCALE_CONCURRENCY} in flight, ${keys} keys: 1, 3 and 5 nodes (--partitions ${PARTITIONS}, --replicas min(3, N)) and one plain server\n`,
  );
  console.log(
    "| servers | op | ops/s | ÷ single server | p50 ms | p99 ms | cores per node | servers' cores | client cores | others' cores | ops/s per server core | partitions led | failed |",
  );
  console.log("| --- | --- | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | ---: | --- | ---: |");
  for (const cell of cells) {
    const servers = cell.nodes === 0 ? cell.servers : `${cell.servers} (R${cell.replicas})`;
    console.log(
      `| ${servers} | ${cell.op} | ${rate(cell.opsPerSecond)} | ${cell.ofSingle.toFixed(2)} | ${ms(cell.p50Ms)} | ${ms(cell.p99Ms)} | ${cell.memberCores.map(cores).join(" / ")} | ${cores(cell.serverCores)} | ${cores(cell.clientCores)} | ${cores(cell.othersCores)} | ${rate(cell.opsPerServerCore)} | ${cell.led.length === 0 ? "—" : cell.led.join(" / ")} | ${cell.failed} |`,
    );
  }
}

function printNeutralTable(cells: readonly NeutralCell[]): void {
  console.log(
    `\n## 3. h2load (not our client), one pre-encoded request: a Set of one hot key, a Get of it, ${SCALE_CONCURRENCY} streams over the nodes\n`,
  );
  console.log("| servers | op | ops/s | ÷ single server | mean latency ms | failed |");
  console.log("| --- | --- | ---: | ---: | ---: | ---: |");
  for (const cell of cells) {
    const single = cells.find((other) => other.servers === "single server" && other.op === cell.op)!;
    console.log(
      `| ${cell.servers} | ${cell.op} | ${rate(cell.opsPerSecond)} | ${(cell.opsPerSecond / single.opsPerSecond).toFixed(2)} | ${ms(cell.meanMs)} | ${cell.failed} |`,
    );
  }
}

async function main(): Promise<void> {
  stopAllOnExit();
  ensureInstalled(["h2load"]);
  const machine = `${cpus().length} × ${cpus()[0]?.model ?? "cpu"}`;
  const date = new Date().toISOString();
  const loadStart = loadAverage();
  console.log(`# Partitioned cluster — ${date.slice(0, 16).replace("T", " ")} UTC, ${machine}`);
  console.log(`load average at the start: ${loadStart}`);
  console.log(
    `${VALUE_SIZE}-byte values, ${warmupSeconds} s of warm-up then ${seconds} s measured per cell, each started on quiet servers; clients in this process over one connection per node; every process on the same ${cpus().length} cores`,
  );

  const shape = (nodes: number) => ({ partitions: PARTITIONS, replicas: Math.min(3, nodes) });
  // The 3-node cluster serves both parts; then the baseline, then 1 and 5 nodes.
  const [setCells, threeNodes, threeNeutral] = await withServers(
    startPartitionedCluster(3, shape(3)),
    async (cluster) =>
      [await crossPartitionPart(cluster), await scalePart(cluster, 3, 3), await neutralPart(cluster)] as const,
  );
  const [single, singleNeutral] = await withServers(
    startSingleServer(),
    async (server) => [await scalePart(server, 0, 1), await neutralPart(server)] as const,
  );
  const byNodes = new Map<number, ScaleCell[]>([[3, threeNodes]]);
  for (const nodes of NODE_COUNTS.filter((n) => n !== 3))
    byNodes.set(
      nodes,
      await withServers(startPartitionedCluster(nodes, shape(nodes)), (cluster) =>
        scalePart(cluster, nodes, shape(nodes).replicas),
      ),
    );
  const scaleCells = [...single, ...NODE_COUNTS.flatMap((nodes) => byNodes.get(nodes)!)];
  for (const cell of scaleCells)
    cell.ofSingle = cell.opsPerSecond / single.find((baseline) => baseline.op === cell.op)!.opsPerSecond;

  const neutralCells = [...singleNeutral, ...threeNeutral];
  printSetTable(setCells);
  printScaleTable(scaleCells);
  printNeutralTable(neutralCells);
  const loadEnd = loadAverage();
  if (notQuiet > 0) console.log(`\n${notQuiet} cell(s) started before the servers were quiet (15 s without).`);
  console.log(`\nload average at the end: ${loadEnd}`);
  if (json)
    console.log(
      JSON.stringify({
        date,
        machine,
        loadStart,
        loadEnd,
        seconds,
        warmupSeconds,
        keys,
        partitions: PARTITIONS,
        valueSize: VALUE_SIZE,
        notQuiet,
        setOfTen: setCells,
        singleKey: scaleCells,
        h2loadHotKey: neutralCells,
      }),
    );
}

try {
  await main();
} finally {
  await stopAll();
}

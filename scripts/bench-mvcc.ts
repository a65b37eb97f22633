#!/usr/bin/env bun
/**
 * The MVCC store measured on its own, in process, beside the baselines it is judged against, and
 * its memory beside Redis's, in one run:
 *
 *   bun scripts/bench-mvcc.ts [--keys 1000000] [--json]
 *
 *   a. get and set ops/s: single-key `apply` and single-key `read` at the current revision, beside a
 *      plain Map<string, Uint8Array> doing the same work on the same keys;
 *   b. set latency: mean ns per single-key overwrite in a store of 1,000 keys and in one of --keys
 *      keys (target: at most 1.2× apart);
 *   c. GC: --keys overwrites under an open snapshot, then `collectGarbage(1000)` slices until done:
 *      versions collected per second, and the longest slice (slices are bounded);
 *   d. bytes per key at --keys keys (16-byte keys, 100-byte values): in process (JS heap after a full
 *      GC), a real `homekv serve --in-memory` (RSS) and redis-server (used_memory and RSS), and
 *      HomeKV RSS / Redis RSS (target: at most 1.5×).
 *
 * Prints one table to stdout; with --json the table goes to stderr and stdout is one JSON object.
 * `--keys` scales every section (the test suite runs `--keys 2000`). Installs Redis from Debian when
 * it is missing (as root), and stops every process it started, on failure and on Ctrl-C too.
 */
import { heapStats } from "bun:jsc";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { availableParallelism, cpus, tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { connectH2Pool } from "../src/bench/h2-unary.ts";
import { benchKey, homekvProtocol, prefillRequests } from "../src/bench/workload.ts";
import { MetricsResponse } from "../src/gen/homekv_service.ts";
import { mulberry32 } from "../src/random.ts";
import { createMvccStore, type MvccStore } from "../src/storage/mvcc/store.ts";
import { median } from "./bench/args.ts";
import { peakRssBytes, rssBytes, settledRss } from "./bench/rss.ts";
import { ensureInstalled, freePort, stopProcess } from "./bench/servers.ts";

const ROOT = resolve(import.meta.dir, "..");
const MAIN = join(ROOT, "src", "main.ts");
const VALUE_SIZE = 100;
const KEY_SIZE = benchKey(0).length; // 16
const SMALL_STORE_KEYS = 1_000;
const GC_SLICE_KEYS = 1_000;
const PREFILL_BATCH = 1_000;
const SET_LATENCY_TARGET = 1.2;
const RSS_RATIO_TARGET = 1.5;
const SERVICE = "/homekv_service.HomeKvService";

// ---------------------------------------------------------------------------------------------
// Flags

function usage(message: string): never {
  console.error(`bench-mvcc: ${message} (usage: bun scripts/bench-mvcc.ts [--keys 1000000] [--json])`);
  process.exit(2);
}

const argv = process.argv.slice(2);
let KEYS = 1_000_000;
let JSON_OUT = false;
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i]!;
  if (arg === "--json") JSON_OUT = true;
  else if (arg === "--keys" || arg.startsWith("--keys=")) {
    const text = arg === "--keys" ? argv[++i] : arg.slice("--keys=".length);
    const n = Number(text);
    if (!Number.isInteger(n) || n < SMALL_STORE_KEYS || n > 50_000_000)
      usage(`--keys must be a whole number from ${SMALL_STORE_KEYS} to 50000000, not ${JSON.stringify(text)}`);
    KEYS = n;
  } else usage(`unknown argument ${JSON.stringify(arg)}`);
}

/** Operations per timed round of section a, and applies per round of section b: scaled by --keys. */
const THROUGHPUT_OPS = clamp(KEYS / 2, 20_000, 500_000);
const LATENCY_OPS = clamp(KEYS / 5, 20_000, 200_000);

function clamp(n: number, low: number, high: number): number {
  return Math.round(Math.min(high, Math.max(low, n)));
}

// ---------------------------------------------------------------------------------------------
// Output

const print = (line = "") => (JSON_OUT ? console.error(line) : console.log(line));
const progress = (line: string) => {
  if (process.stderr.isTTY) console.error(`  … ${line}`);
};
const int = (n: number) => Math.round(n).toLocaleString("en-US");
const rate = (n: number) =>
  n >= 1e6 ? `${(n / 1e6).toFixed(2)} M/s` : n >= 1e3 ? `${(n / 1e3).toFixed(1)} k/s` : `${n.toFixed(0)} /s`;
const times = (n: number) => `${n.toFixed(2)}×`;
const bytes = (n: number) => `${n.toFixed(1)} B`;
const verdict = (value: number, target: number) => `target ≤ ${target}×: ${value <= target ? "met" : "MISSED"}`;

// ---------------------------------------------------------------------------------------------
// Child processes: every one is tracked and stopped, whatever happens

interface Child {
  name: string;
  proc: Subprocess;
  cleanup?: () => void;
}

const children = new Set<Child>();

function track(child: Child): Child {
  children.add(child);
  return child;
}

async function stop(child: Child): Promise<void> {
  children.delete(child);
  await stopProcess(child.proc, 5_000);
  child.cleanup?.();
}

async function stopAll(): Promise<void> {
  await Promise.all([...children].map(stop));
}

for (const [signal, code] of [
  ["SIGINT", 130],
  ["SIGTERM", 143],
] as const) {
  process.once(signal, () => {
    console.error(`bench-mvcc: ${signal}: stopping the servers it started`);
    stopAll().finally(() => process.exit(code));
  });
}
// Last resort (an exit from anywhere): no child outlives the script.
process.on("exit", () => {
  for (const child of children) {
    try {
      child.proc.kill("SIGKILL");
    } catch {}
    try {
      child.cleanup?.();
    } catch {}
  }
});

/** Resident set size of a process, in bytes, from /proc/<pid>/status. */
/**
 * RSS once it has stopped moving: within 1% over the last 5 s (samples 1 s apart), at most 40 s of
 * waiting — the same rule for every server. A short rule (0.5% between two samples 300 ms apart)
 * caught HomeKV mid-way, while JavaScriptCore still handed back the garbage of the load.
 */
async function serverRss(pid: number): Promise<number> {
  // Small smoke runs (the test suite's) have nothing to hand back: they sample five times faster
  // (at ten times, a settled RSS was caught below the idle one, and the per-key figure negative).
  const intervalMs = KEYS >= 100_000 ? 1_000 : 200;
  const rule = { intervalMs, windowMs: 5 * intervalMs, tolerance: 0.01, waitMsMax: 40 * intervalMs };
  return (await settledRss([pid], rule)).bytes[0]!;
}

/** Collects a stream into `sink` as it arrives, so that a chatty child never blocks on a full pipe. */
function drain(stream: ReadableStream<Uint8Array>, sink: { text: string }): Promise<void> {
  return (async () => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) sink.text += decoder.decode(chunk, { stream: true });
  })().catch(() => {});
}

function withTimeout<T>(what: string, promise: Promise<T>, ms: number): Promise<T> {
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms / 1000} s`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

// ---------------------------------------------------------------------------------------------
// In-process helpers

/** JS heap in use after a full, synchronous collection. */
function heapAfterGc(): number {
  Bun.gc(true);
  Bun.gc(true);
  return process.memoryUsage().heapUsed;
}

function freshValue(): Uint8Array {
  return new Uint8Array(VALUE_SIZE).fill(120); // "x", like the load generator's prefill and Redis's
}

/** Writes keys 0..n-1 the way the server's prefill does: batches of 1,000 keys, one revision each. */
function fillStore(store: MvccStore, n: number, value: () => Uint8Array): void {
  for (let start = 0; start < n; start += PREFILL_BATCH) {
    const end = Math.min(n, start + PREFILL_BATCH);
    const ops = [];
    for (let i = start; i < end; i++) ops.push({ key: benchKey(i), value: value() });
    store.apply({ revision: store.revision + 1, ops });
  }
}

/**
 * `count` fresh key strings drawn uniformly from keys 0..keys-1 (seeded). Fresh strings, as a
 * server decodes them from each request, laid out in the order they are used, so that reading the
 * key itself costs the same whatever the size of the store being measured.
 */
function keySequence(keys: number, count: number, seed: number): string[] {
  const random = mulberry32(seed);
  return Array.from({ length: count }, () => benchKey(Math.floor(random() * keys)));
}

function mvccSets(store: MvccStore, keys: readonly string[], value: Uint8Array): void {
  let revision = store.revision;
  for (let i = 0; i < keys.length; i++) store.apply({ revision: ++revision, ops: [{ key: keys[i]!, value }] });
}

function mvccGets(store: MvccStore, keys: readonly string[]): number {
  const revision = store.revision;
  let sum = 0;
  for (let i = 0; i < keys.length; i++) sum += store.read([keys[i]!], revision)[0]?.byteLength ?? 0;
  return sum;
}

function mapSets(map: Map<string, Uint8Array>, keys: readonly string[], value: Uint8Array): void {
  for (let i = 0; i < keys.length; i++) map.set(keys[i]!, value);
}

function mapGets(map: Map<string, Uint8Array>, keys: readonly string[]): number {
  let sum = 0;
  for (let i = 0; i < keys.length; i++) sum += map.get(keys[i]!)?.byteLength ?? 0;
  return sum;
}

/** Milliseconds `run` took. */
function timed(run: () => unknown): number {
  const started = performance.now();
  run();
  return performance.now() - started;
}

/** Object counts by type (bun:jsc heapStats) added per key between two heap censuses. */
function objectsPerKey(
  before: Record<string, number>,
  after: Record<string, number>,
  n: number,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [type, count] of Object.entries(after)) {
    const perKey = (count - (before[type] ?? 0)) / n;
    if (perKey >= 0.01) out[type] = Number(perKey.toFixed(3));
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sections

interface Row {
  section: string;
  measure: string;
  homekv: string;
  baseline: string;
  ratio: string;
  note: string;
}

const rows: Row[] = [];
const row = (section: string, measure: string, homekv: string, baseline = "", ratio = "", note = "") =>
  rows.push({ section, measure, homekv, baseline, ratio, note });

/** a, b, c and d.i: everything measured inside this process. */
async function inProcess() {
  const shared = freshValue();

  // d.i first, on a clean heap: the store filled with N keys, each with its own 100-byte value.
  progress(`d.i: filling the store with ${int(KEYS)} keys`);
  const census0 = heapStats().objectTypeCounts as Record<string, number>;
  const heap0 = heapAfterGc();
  const rss0 = rssBytes("self");
  const large = createMvccStore();
  const fillMs = timed(() => fillStore(large, KEYS, freshValue));
  const heap1 = heapAfterGc();
  const rss1 = rssBytes("self");
  const census1 = heapStats().objectTypeCounts as Record<string, number>;
  const storeHeapPerKey = (heap1 - heap0) / KEYS;
  const storeObjects = objectsPerKey(census0, census1, KEYS);
  // The store's own count of its arrays and slabs, before anything overwrites a key.
  const packedBytesPerKey = large.stats().packedBytes / KEYS;

  progress(`d.i: filling a Map with ${int(KEYS)} keys`);
  const map = new Map<string, Uint8Array>();
  for (let i = 0; i < KEYS; i++) map.set(benchKey(i), freshValue());
  const mapHeapPerKey = (heapAfterGc() - heap1) / KEYS;
  await Bun.sleep(0); // let a Ctrl-C in

  // a. Throughput beside a Map, interleaved rounds on the same key sequence; the median round counts.
  progress("a: get/set throughput");
  const sequence = keySequence(KEYS, THROUGHPUT_OPS, 1);
  const expectedSum = sequence.length * VALUE_SIZE;
  const through = { mvccSet: [] as number[], mapSet: [] as number[], mvccGet: [] as number[], mapGet: [] as number[] };
  for (let round = 0; round < 4; round++) {
    const mapSet = timed(() => mapSets(map, sequence, shared));
    const mvccSet = timed(() => mvccSets(large, sequence, shared));
    let mapSum = 0;
    let mvccSum = 0;
    const mapGet = timed(() => (mapSum = mapGets(map, sequence)));
    const mvccGet = timed(() => (mvccSum = mvccGets(large, sequence)));
    if (mapSum !== expectedSum || mvccSum !== expectedSum)
      throw new Error(`gets read ${mvccSum} (store) and ${mapSum} (Map) bytes, not ${expectedSum}`);
    if (round === 0) continue; // warm-up: both sides compiled by the JIT before anything counts
    const perSecond = (ms: number) => sequence.length / (ms / 1000);
    through.mapSet.push(perSecond(mapSet));
    through.mvccSet.push(perSecond(mvccSet));
    through.mapGet.push(perSecond(mapGet));
    through.mvccGet.push(perSecond(mvccGet));
    await Bun.sleep(0);
  }
  const throughput = {
    ops: sequence.length,
    mvccSetOpsPerSec: median(through.mvccSet),
    mapSetOpsPerSec: median(through.mapSet),
    mvccGetOpsPerSec: median(through.mvccGet),
    mapGetOpsPerSec: median(through.mapGet),
    setMapOverMvcc: 0,
    getMapOverMvcc: 0,
  };
  throughput.setMapOverMvcc = throughput.mapSetOpsPerSec / throughput.mvccSetOpsPerSec;
  throughput.getMapOverMvcc = throughput.mapGetOpsPerSec / throughput.mvccGetOpsPerSec;

  // b. Set latency, 1,000 keys vs N keys: interleaved rounds, the median round counts.
  progress("b: set latency, small store vs large store");
  const small = createMvccStore();
  fillStore(small, SMALL_STORE_KEYS, freshValue);
  const smallSequence = keySequence(SMALL_STORE_KEYS, LATENCY_OPS, 2);
  const largeSequence = keySequence(KEYS, LATENCY_OPS, 3);
  // The same overwrites on a plain Map of each size: what the hardware alone charges for a larger
  // working set (cache and TLB misses), for reference.
  const smallMap = new Map<string, Uint8Array>();
  for (let i = 0; i < SMALL_STORE_KEYS; i++) smallMap.set(benchKey(i), freshValue());
  const smallNs: number[] = [];
  const largeNs: number[] = [];
  const smallMapNs: number[] = [];
  const largeMapNs: number[] = [];
  const nsPerSet = (ms: number) => (ms * 1e6) / LATENCY_OPS;
  for (let round = 0; round < 6; round++) {
    const s = timed(() => mvccSets(small, smallSequence, shared));
    const l = timed(() => mvccSets(large, largeSequence, shared));
    const sm = timed(() => mapSets(smallMap, smallSequence, shared));
    const lm = timed(() => mapSets(map, largeSequence, shared));
    if (round > 0) {
      smallNs.push(nsPerSet(s));
      largeNs.push(nsPerSet(l));
      smallMapNs.push(nsPerSet(sm));
      largeMapNs.push(nsPerSet(lm));
    }
    await Bun.sleep(0);
  }
  map.clear();
  const setLatency = {
    applies: LATENCY_OPS,
    rounds: smallNs.length,
    smallStoreKeys: SMALL_STORE_KEYS,
    smallStoreNsPerSet: median(smallNs),
    largeStoreKeys: KEYS,
    largeStoreNsPerSet: median(largeNs),
    largeOverSmall: 0,
    target: SET_LATENCY_TARGET,
    mapSmallNsPerSet: median(smallMapNs),
    mapLargeNsPerSet: median(largeMapNs),
    mapLargeOverSmall: 0,
  };
  setLatency.largeOverSmall = setLatency.largeStoreNsPerSet / setLatency.smallStoreNsPerSet;
  setLatency.mapLargeOverSmall = setLatency.mapLargeNsPerSet / setLatency.mapSmallNsPerSet;

  // c. GC: N overwrites under an open snapshot, released, then bounded slices until nothing is left.
  progress(`c: ${int(KEYS)} overwrites under a snapshot, then GC`);
  if (large.stats().versions !== KEYS)
    throw new Error(`store holds ${large.stats().versions} versions before GC, not ${KEYS}`);
  const snapshot = large.openSnapshot();
  const random = mulberry32(4);
  let revision = large.revision;
  for (let i = 0; i < KEYS; i++)
    large.apply({ revision: ++revision, ops: [{ key: benchKey(Math.floor(random() * KEYS)), value: shared }] });
  const versionsBefore = large.stats().versions;
  snapshot.release();
  const sliceLimit = 4 * Math.ceil(versionsBefore / GC_SLICE_KEYS) + 100; // a slice visits up to 1,000 keys: far more than enough
  let slices = 0;
  let collected = 0;
  const sliceMs: number[] = [];
  let more = true;
  const gcStarted = performance.now();
  while (more && slices < sliceLimit) {
    const sliceStarted = performance.now();
    const slice = large.collectGarbage(GC_SLICE_KEYS);
    sliceMs.push(performance.now() - sliceStarted);
    slices++;
    collected += slice.versionsCollected;
    more = slice.more;
  }
  const gcMs = performance.now() - gcStarted;
  sliceMs.sort((a, b) => a - b);
  const maxSliceMs = sliceMs.at(-1)!;
  const p99SliceMs = sliceMs[Math.min(sliceMs.length - 1, Math.floor(sliceMs.length * 0.99))]!;
  if (more) throw new Error(`GC still had work after ${slices} slices of ${GC_SLICE_KEYS} keys`);
  if (large.stats().versions !== KEYS || collected <= 0) {
    throw new Error(
      `GC collected ${collected} versions; ${large.stats().versions} remain for ${KEYS} keys (expected one each)`,
    );
  }
  const gc = {
    overwrites: KEYS,
    versionsCollected: collected,
    slices,
    sliceKeysMax: GC_SLICE_KEYS,
    totalMs: gcMs,
    versionsPerSec: collected / (gcMs / 1000),
    meanSliceMs: gcMs / slices,
    p99SliceMs,
    maxSliceMs,
  };

  const inProcessMemory = {
    heapBytesPerKey: storeHeapPerKey,
    rssBytesPerKey: (rss1 - rss0) / KEYS,
    fillMs,
    mapHeapBytesPerKey: mapHeapPerKey,
    objectsPerKey: storeObjects,
    packedBytesPerKey,
  };
  // Keep both stores alive to here, so that nothing above measured a store already collected.
  if (large.stats().keys !== KEYS || small.stats().keys !== SMALL_STORE_KEYS) throw new Error("a store lost keys");
  return { throughput, setLatency, gc, inProcessMemory };
}

/** d.ii: a real `homekv serve --in-memory`, loaded through the load generator's prefill. */
async function homekvServer() {
  const proc = Bun.spawn([process.execPath, MAIN, "serve", "--in-memory", "--host", "127.0.0.1", "-p", "0"], {
    cwd: ROOT,
    env: { ...process.env, NO_COLOR: "1" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  const child = track({ name: "homekv", proc });
  try {
    const output = { text: "" };
    void drain(proc.stdout, output);
    void drain(proc.stderr, output);
    // Port 0: the server binds a free port and names it in its start line (no race for the port).
    let port: number | undefined;
    const deadline = Date.now() + 20_000;
    while (port === undefined) {
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(output.text);
      if (match) port = Number(match[1]);
      else if (proc.exitCode !== null) throw new Error(`homekv serve exited with ${proc.exitCode}:\n${output.text}`);
      else if (Date.now() > deadline) throw new Error(`homekv serve did not start within 20 s:\n${output.text}`);
      else await Bun.sleep(20);
    }
    const address = `127.0.0.1:${port}`;
    const pool = connectH2Pool(address, 1, { timeoutMs: 60_000 });
    try {
      const probeGet = homekvProtocol.get(["probe"]);
      const probe = await pool.call(probeGet.path, probeGet.message);
      if (probe.status !== 0) throw new Error(`homekv at ${address} does not answer: ${probe.message}`);
      const baselineRss = await serverRss(proc.pid);

      progress(`d.ii: loading homekv serve --in-memory with ${int(KEYS)} keys`);
      const requests = prefillRequests({ keys: KEYS, valueSize: VALUE_SIZE }, PREFILL_BATCH);
      let failure: string | undefined;
      const loadStarted = performance.now();
      // A few requests in flight; the shared generator bounds the whole load.
      const worker = async () => {
        for (let next = requests.next(); !next.done && failure === undefined; next = requests.next()) {
          const result = await pool.call(next.value.path, next.value.message);
          if (result.status !== 0) failure = `status ${result.status}: ${result.message}`;
        }
      };
      await Promise.all(Array.from({ length: 4 }, worker));
      const loadMs = performance.now() - loadStarted;
      if (failure !== undefined) throw new Error(`loading homekv failed: ${failure}`);
      const metrics = await pool.call(`${SERVICE}/Metrics`, new Uint8Array());
      if (metrics.status !== 0) throw new Error(`homekv metrics failed: ${metrics.message}`);
      const keysCount = MetricsResponse.decode(metrics.body).metrics?.keysCount;
      if (keysCount !== KEYS) throw new Error(`homekv holds ${keysCount} keys after the load, not ${KEYS}`);
      const loadedRss = await serverRss(proc.pid);
      return {
        pid: proc.pid,
        baselineRssBytes: baselineRss,
        loadedRssBytes: loadedRss,
        peakRssBytes: peakRssBytes(proc.pid),
        rssBytesPerKey: (loadedRss - baselineRss) / KEYS,
        loadMs,
      };
    } finally {
      pool.close();
    }
  } finally {
    await stop(child);
  }
}

/** d.iii: redis-server without persistence, loaded with exactly the same keys and values. */
async function redisServer() {
  const dir = mkdtempSync(join(tmpdir(), "bench-mvcc-redis-"));
  const port = freePort();
  const proc = Bun.spawn(
    [
      "redis-server",
      "--port",
      String(port),
      "--bind",
      "127.0.0.1",
      "--save",
      "",
      "--appendonly",
      "no",
      "--dir",
      dir,
      "--daemonize",
      "no",
    ],
    { stdin: "ignore", stdout: "pipe", stderr: "pipe" },
  );
  const child = track({ name: "redis", proc, cleanup: () => rmSync(dir, { recursive: true, force: true }) });
  try {
    const output = { text: "" };
    void drain(proc.stdout, output);
    void drain(proc.stderr, output);
    const cli = (...args: string[]) => {
      const result = Bun.spawnSync(["redis-cli", "-h", "127.0.0.1", "-p", String(port), ...args], {
        stdout: "pipe",
        stderr: "pipe",
        timeout: 10_000,
      });
      return result.exitCode === 0 ? result.stdout.toString() : "";
    };
    const deadline = Date.now() + 20_000;
    while (cli("ping").trim() !== "PONG") {
      if (proc.exitCode !== null) throw new Error(`redis-server exited with ${proc.exitCode}:\n${output.text}`);
      if (Date.now() > deadline) throw new Error(`redis-server did not answer within 20 s:\n${output.text}`);
      await Bun.sleep(100);
    }
    const usedMemory = () => {
      const match = /^used_memory:(\d+)/m.exec(cli("info", "memory"));
      if (!match) throw new Error("redis INFO memory has no used_memory");
      return Number(match[1]);
    };
    const baselineUsed = usedMemory();
    const baselineRss = await serverRss(proc.pid);

    progress(`d.iii: loading redis-server with ${int(KEYS)} keys`);
    const loadStarted = performance.now();
    const pipe = Bun.spawn(["redis-cli", "-h", "127.0.0.1", "-p", String(port), "--pipe"], {
      stdin: "pipe",
      stdout: "pipe",
      stderr: "pipe",
    });
    const pipeChild = track({ name: "redis-cli --pipe", proc: pipe });
    try {
      const pipeOut = { text: "" };
      const reading = Promise.all([drain(pipe.stdout, pipeOut), drain(pipe.stderr, pipeOut)]);
      const value = "x".repeat(VALUE_SIZE);
      for (let start = 0; start < KEYS; start += 10_000) {
        let chunk = "";
        for (let i = start; i < Math.min(KEYS, start + 10_000); i++) {
          const key = benchKey(i);
          chunk += `*3\r\n$3\r\nSET\r\n$${key.length}\r\n${key}\r\n$${value.length}\r\n${value}\r\n`;
        }
        pipe.stdin.write(chunk);
        await pipe.stdin.flush();
      }
      await pipe.stdin.end();
      const code = await withTimeout("redis-cli --pipe", pipe.exited, 300_000);
      await reading;
      const replies = /errors: (\d+), replies: (\d+)/.exec(pipeOut.text);
      if (code !== 0 || !replies || replies[1] !== "0" || Number(replies[2]) !== KEYS) {
        throw new Error(`redis-cli --pipe failed (exit ${code}):\n${pipeOut.text}`);
      }
    } finally {
      await stop(pipeChild);
    }
    const loadMs = performance.now() - loadStarted;
    const dbsize = Number(cli("dbsize").trim());
    if (dbsize !== KEYS) throw new Error(`redis holds ${dbsize} keys after the load, not ${KEYS}`);
    const loadedUsed = usedMemory();
    const loadedRss = await serverRss(proc.pid);
    return {
      pid: proc.pid,
      peakRssBytes: peakRssBytes(proc.pid),
      baselineUsedMemory: baselineUsed,
      usedMemoryBytesPerKey: (loadedUsed - baselineUsed) / KEYS,
      baselineRssBytes: baselineRss,
      loadedRssBytes: loadedRss,
      rssBytesPerKey: (loadedRss - baselineRss) / KEYS,
      loadMs,
    };
  } finally {
    await stop(child);
  }
}

// ---------------------------------------------------------------------------------------------

function machine() {
  const nproc =
    Number(Bun.spawnSync(["nproc"], { stdout: "pipe", stderr: "ignore" }).stdout.toString().trim()) ||
    availableParallelism();
  const model =
    /^model name\s*:\s*(.+)$/m.exec(readFileSync("/proc/cpuinfo", "utf8"))?.[1]?.trim() ??
    cpus()[0]?.model ??
    "unknown CPU";
  return { nproc, cpu: model, date: new Date().toISOString(), bun: Bun.version };
}

async function main(): Promise<void> {
  ensureInstalled(["redis-server", "redis-cli"]);
  const host = machine();
  print(`# HomeKV MVCC store — ${host.date}, nproc ${host.nproc}, ${host.cpu}, Bun ${host.bun}`);
  print(`${int(KEYS)} keys of ${KEY_SIZE} bytes, ${VALUE_SIZE}-byte values (raw data ${KEY_SIZE + VALUE_SIZE} B/key)`);
  print();

  const measured = await inProcess();
  const homekv = await homekvServer();
  const redis = await redisServer();
  const { throughput: t, setLatency: s, gc, inProcessMemory: m } = measured;
  const raw = KEY_SIZE + VALUE_SIZE;
  const rssRatio = homekv.rssBytesPerKey / redis.rssBytesPerKey;

  row(
    "a",
    "set ops/s: 1-key apply vs Map.set",
    rate(t.mvccSetOpsPerSec),
    rate(t.mapSetOpsPerSec),
    times(t.setMapOverMvcc),
    `Map ÷ store; median of 3 rounds of ${int(t.ops)}`,
  );
  row(
    "a",
    "get ops/s: 1-key read vs Map.get",
    rate(t.mvccGetOpsPerSec),
    rate(t.mapGetOpsPerSec),
    times(t.getMapOverMvcc),
    "Map ÷ store; at the current revision",
  );
  row(
    "b",
    `set ns/apply: ${int(KEYS)} vs ${int(SMALL_STORE_KEYS)} keys`,
    s.largeStoreNsPerSet.toFixed(0),
    s.smallStoreNsPerSet.toFixed(0),
    times(s.largeOverSmall),
    `${verdict(s.largeOverSmall, SET_LATENCY_TARGET)}; median of ${s.rounds} rounds of ${int(s.applies)} overwrites`,
  );
  row(
    "b",
    `  reference: Map.set ns, same keys`,
    s.mapLargeNsPerSet.toFixed(0),
    s.mapSmallNsPerSet.toFixed(0),
    times(s.mapLargeOverSmall),
    "a plain Map of each size: the cost of a larger working set alone",
  );
  row(
    "c",
    "GC versions collected/s",
    rate(gc.versionsPerSec),
    "",
    "",
    `${int(gc.versionsCollected)} versions, ${int(gc.slices)} slices of ≤ ${int(GC_SLICE_KEYS)} keys, ${gc.totalMs.toFixed(0)} ms`,
  );
  row(
    "c",
    "GC longest slice",
    `${gc.maxSliceMs.toFixed(2)} ms`,
    "",
    "",
    `mean ${gc.meanSliceMs.toFixed(2)} ms, p99 ${gc.p99SliceMs.toFixed(2)} ms`,
  );
  row(
    "d.i",
    "bytes/key in process: heap vs raw",
    bytes(m.heapBytesPerKey),
    bytes(raw),
    times(m.heapBytesPerKey / raw),
    `process RSS +${bytes(m.rssBytesPerKey)}/key; a plain Map: ${bytes(m.mapHeapBytesPerKey)}/key`,
  );
  row(
    "d.i",
    "  of it: key index, version rows, slabs",
    bytes(m.packedBytesPerKey),
    "",
    "",
    "the store's count of its typed arrays and slabs, after the fill",
  );
  row(
    "d.ii",
    "bytes/key homekv serve --in-memory (RSS)",
    bytes(homekv.rssBytesPerKey),
    bytes(raw),
    times(homekv.rssBytesPerKey / raw),
    `RSS ${int(homekv.baselineRssBytes / 2 ** 20)} → ${int(homekv.loadedRssBytes / 2 ** 20)} MiB (peak ${int(homekv.peakRssBytes / 2 ** 20)}); load ${(homekv.loadMs / 1000).toFixed(1)} s`,
  );
  row(
    "d.iii",
    "bytes/key redis used_memory",
    bytes(redis.usedMemoryBytesPerKey),
    bytes(raw),
    times(redis.usedMemoryBytesPerKey / raw),
    `load ${(redis.loadMs / 1000).toFixed(1)} s (redis-cli --pipe)`,
  );
  row(
    "d.iii",
    "bytes/key redis RSS",
    bytes(redis.rssBytesPerKey),
    bytes(raw),
    times(redis.rssBytesPerKey / raw),
    `RSS ${int(redis.baselineRssBytes / 2 ** 20)} → ${int(redis.loadedRssBytes / 2 ** 20)} MiB (peak ${int(redis.peakRssBytes / 2 ** 20)})`,
  );
  row(
    "d",
    "RSS/key: HomeKV vs Redis",
    bytes(homekv.rssBytesPerKey),
    bytes(redis.rssBytesPerKey),
    times(rssRatio),
    verdict(rssRatio, RSS_RATIO_TARGET),
  );
  row(
    "d",
    "settled RSS: HomeKV vs Redis (whole process)",
    `${int(homekv.loadedRssBytes / 2 ** 20)} MiB`,
    `${int(redis.loadedRssBytes / 2 ** 20)} MiB`,
    times(homekv.loadedRssBytes / redis.loadedRssBytes),
    `HomeKV's peak during the load ${times(homekv.peakRssBytes / homekv.loadedRssBytes)} its settled RSS`,
  );

  const header: Row = {
    section: "§",
    measure: "measure",
    homekv: "HomeKV",
    baseline: "baseline",
    ratio: "ratio",
    note: "note",
  };
  const columns = Object.keys(header) as (keyof Row)[];
  const width = Object.fromEntries(
    columns.map((c) => [c, Math.max(...[header, ...rows].map((r) => r[c].length))]),
  ) as Record<keyof Row, number>;
  const numeric = new Set<keyof Row>(["homekv", "baseline", "ratio"]);
  const line = (r: Row) =>
    `| ${columns.map((c) => (numeric.has(c) ? r[c].padStart(width[c]) : r[c].padEnd(width[c]))).join(" | ")} |`;
  print(line(header));
  print(
    `| ${columns.map((c) => (numeric.has(c) ? `${"-".repeat(width[c] - 1)}:` : "-".repeat(width[c]))).join(" | ")} |`,
  );
  for (const r of rows) print(line(r));
  print();
  print(
    `objects per key in the store (bun:jsc heapStats): ${Object.entries(m.objectsPerKey)
      .map(([type, n]) => `${type} ${n}`)
      .join(", ")}`,
  );

  if (JSON_OUT) {
    const report = {
      machine: host,
      keys: KEYS,
      keyBytes: KEY_SIZE,
      valueBytes: VALUE_SIZE,
      throughput: t,
      setLatency: s,
      gc,
      memory: {
        rawBytesPerKey: raw,
        inProcess: m,
        homekv,
        redis,
        homekvRssOverRedisRss: rssRatio,
        target: RSS_RATIO_TARGET,
      },
    };
    console.log(JSON.stringify(report, null, 2));
  }
}

try {
  await main();
} catch (error) {
  console.error(`bench-mvcc: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await stopAll();
}

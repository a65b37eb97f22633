/**
 * Memory of a HomeKV server across a restart: a real `homekv serve --data-dir` is loaded with N keys
 * through gRPC, stopped (SIGTERM: it writes a checkpoint; SIGKILL: the next start replays the WAL),
 * and started again on the same directory while its VmRSS and VmHWM are sampled from /proc, during
 * recovery and until the RSS has settled. Shared by scripts/bench-restart-memory.ts and the test
 * that bounds it (test/durability/restart-memory.test.ts).
 */
import { mkdtempSync, readdirSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import type { Subprocess } from "bun";
import { connectH2Pool } from "../../src/bench/h2-unary.ts";
import { prefillRequests } from "../../src/bench/workload.ts";
import { MetricsResponse } from "../../src/gen/homekv_service.ts";
import { peakRssBytes, rssBytes, type SettleRule, settledRss } from "./rss.ts";

const MAIN = resolve(import.meta.dir, "..", "..", "src", "main.ts");
const SERVICE = "/homekv_service.HomeKvService";
const KEYS_PER_REQUEST = 1_000;
const REQUESTS_IN_FLIGHT = 4;
/** How often the restarted server's memory is read while it recovers. */
const SAMPLE_INTERVAL_MS = 20;

export interface RestartMemoryOptions {
  keys: number;
  valueBytes: number;
  /** How the writer stops: SIGTERM (checkpoint at shutdown) or SIGKILL (the WAL is replayed). */
  stop: "SIGTERM" | "SIGKILL";
  settle: SettleRule;
  /** Bounds each server's start, the load, and the stop. */
  stepTimeoutMs: number;
  progress?: (line: string) => void;
}

export interface RestartMemory {
  /** The writer's settled RSS after the load, and its peak (VmHWM) up to then. */
  writerRssBytes: number;
  writerPeakBytes: number;
  loadMs: number;
  /** Bytes of the data directory after the stop. */
  dataDirBytes: number;
  /** Time from spawn until the restarted server listened, and what it printed of its recovery. */
  readyMs: number;
  recoveryLine: string;
  /** VmRSS of the restarted server when it began to listen, its peak (VmHWM) at the end, and settled. */
  readyRssBytes: number;
  restartPeakBytes: number;
  settledRssBytes: number;
  settled: boolean;
  /** The sampled VmRSS during recovery: [ms since spawn, bytes]. */
  samples: [number, number][];
}

interface Server {
  proc: Subprocess<"ignore", "pipe", "pipe">;
  output: () => string;
  spawnedAt: number;
}

function spawnServer(dataDir: string): Server {
  const proc = Bun.spawn([process.execPath, MAIN, "serve", "--host", "127.0.0.1", "-p", "0", "--data-dir", dataDir], {
    env: { ...process.env, NO_COLOR: "1" },
    stdin: "ignore",
    stdout: "pipe",
    stderr: "pipe",
  });
  let text = "";
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) text += decoder.decode(chunk, { stream: true });
  };
  void collect(proc.stdout);
  void collect(proc.stderr);
  return { proc, output: () => text, spawnedAt: performance.now() };
}

/** Polls `check` every `intervalMs` until it returns a value; fails naming `what` after `timeoutMs`. */
async function poll<T>(what: string, check: () => T | undefined, timeoutMs: number, intervalMs: number): Promise<T> {
  const started = performance.now();
  for (let i = 0; i <= Math.ceil(timeoutMs / intervalMs); i++) {
    const value = check();
    if (value !== undefined) return value;
    if (performance.now() - started > timeoutMs) break;
    await Bun.sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

/** The port the server names once it listens (port 0: it picked one). */
function listening(server: Server, timeoutMs: number, onSample?: () => void): Promise<number> {
  return poll(
    "homekv serve to say where it listens",
    () => {
      onSample?.();
      const match = /listening on 127\.0\.0\.1:(\d+)/.exec(server.output());
      if (match) return Number(match[1]);
      if (server.proc.exitCode !== null)
        throw new Error(`homekv serve exited with ${server.proc.exitCode}:\n${server.output()}`);
      return undefined;
    },
    timeoutMs,
    SAMPLE_INTERVAL_MS,
  );
}

async function stopServer(server: Server, signal: "SIGTERM" | "SIGKILL", timeoutMs: number): Promise<void> {
  if (server.proc.exitCode === null && server.proc.signalCode === null) server.proc.kill(signal);
  let timer: Timer | undefined;
  const late = new Promise<false>((resolveLate) => {
    timer = setTimeout(() => resolveLate(false), timeoutMs);
  });
  // A timer, cleared: a pending sleep would keep the caller's process alive to its end.
  const exited = await Promise.race([server.proc.exited.then(() => true), late]).finally(() => clearTimeout(timer));
  if (!exited) {
    server.proc.kill("SIGKILL");
    await server.proc.exited;
    throw new Error(`homekv serve did not exit within ${timeoutMs} ms of ${signal}:\n${server.output()}`);
  }
}

function directoryBytes(dir: string): number {
  let total = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    total += entry.isDirectory() ? directoryBytes(path) : statSync(path).size;
  }
  return total;
}

async function load(address: string, options: RestartMemoryOptions): Promise<void> {
  const pool = connectH2Pool(address, 1, { timeoutMs: options.stepTimeoutMs });
  try {
    const requests = prefillRequests({ keys: options.keys, valueSize: options.valueBytes }, KEYS_PER_REQUEST);
    let failure: string | undefined;
    const worker = async () => {
      for (let next = requests.next(); !next.done && failure === undefined; next = requests.next()) {
        const result = await pool.call(next.value.path, next.value.message);
        if (result.status !== 0) failure = `status ${result.status}: ${result.message}`;
      }
    };
    await Promise.all(Array.from({ length: REQUESTS_IN_FLIGHT }, worker));
    if (failure !== undefined) throw new Error(`loading homekv failed: ${failure}`);
  } finally {
    pool.close();
  }
}

async function keysHeld(address: string): Promise<number> {
  const pool = connectH2Pool(address, 1, { timeoutMs: 10_000 });
  try {
    const metrics = await pool.call(`${SERVICE}/Metrics`, new Uint8Array());
    if (metrics.status !== 0) throw new Error(`homekv metrics failed: ${metrics.message}`);
    return MetricsResponse.decode(metrics.body).metrics?.keysCount ?? 0;
  } finally {
    pool.close();
  }
}

export async function measureRestartMemory(options: RestartMemoryOptions): Promise<RestartMemory> {
  const progress = options.progress ?? (() => {});
  const dataDir = mkdtempSync(join(tmpdir(), "bench-restart-memory-"));
  const servers: Server[] = [];
  try {
    const writer = spawnServer(dataDir);
    servers.push(writer);
    const writerAddress = `127.0.0.1:${await listening(writer, options.stepTimeoutMs)}`;
    progress(`loading ${options.keys} keys into the writer`);
    const loadStarted = performance.now();
    await load(writerAddress, options);
    const loadMs = performance.now() - loadStarted;
    const held = await keysHeld(writerAddress);
    if (held !== options.keys) throw new Error(`the writer holds ${held} keys after the load, not ${options.keys}`);
    progress("waiting for the writer's RSS to settle");
    const writerRssBytes = (await settledRss([writer.proc.pid], options.settle)).bytes[0]!;
    const writerPeakBytes = peakRssBytes(writer.proc.pid);
    progress(`stopping the writer with ${options.stop}`);
    await stopServer(writer, options.stop, options.stepTimeoutMs);
    const dataDirBytes = directoryBytes(dataDir);

    progress("restarting on the same data directory");
    const restarted = spawnServer(dataDir);
    servers.push(restarted);
    const samples: [number, number][] = [];
    const sample = () => {
      try {
        samples.push([Math.round(performance.now() - restarted.spawnedAt), rssBytes(restarted.proc.pid)]);
      } catch {
        // The process is gone from /proc: it exited, and the wait for its start line says how.
      }
    };
    const port = await listening(restarted, options.stepTimeoutMs, sample);
    const readyMs = performance.now() - restarted.spawnedAt;
    const readyRssBytes = rssBytes(restarted.proc.pid);
    const address = `127.0.0.1:${port}`;
    const restoredKeys = await keysHeld(address);
    if (restoredKeys !== options.keys)
      throw new Error(`the restarted server holds ${restoredKeys} keys, not ${options.keys}`);
    progress("waiting for the restarted server's RSS to settle");
    const settled = await settledRss([restarted.proc.pid], options.settle);
    const restartPeakBytes = peakRssBytes(restarted.proc.pid);
    const recoveryLine = /recovered revision[^\n]*/.exec(restarted.output())?.[0] ?? "(no recovery line)";
    await stopServer(restarted, "SIGTERM", options.stepTimeoutMs);
    return {
      writerRssBytes,
      writerPeakBytes,
      loadMs,
      dataDirBytes,
      readyMs,
      recoveryLine,
      readyRssBytes,
      restartPeakBytes,
      settledRssBytes: settled.bytes[0]!,
      settled: settled.settled,
      samples,
    };
  } finally {
    for (const server of servers) if (server.proc.exitCode === null) server.proc.kill("SIGKILL");
    await Promise.all(servers.map((server) => server.proc.exited));
    rmSync(dataDir, { recursive: true, force: true });
  }
}

#!/usr/bin/env bun
/**
 * The FLSM engine beside LevelDB (through classic-level), one run, one process, the same workload:
 *
 *   bun scripts/bench-engine.ts [--sets 2000000] [--keys 1000000] [--value-size 100] [--batch 100]
 *     [--reads 50000] [--scans 1000] [--memtable-bytes 67108864] [--values half|random|zeros] [--quick]
 *
 * Each engine runs in a process of its own (this script again, with `--engine`), so that its RSS and
 * its writes are its own; it gets a fresh directory under the system's temp dir and takes `--sets` random sets of
 * 16-byte keys (`--keys` distinct) and `--value-size`-byte values, `--batch` keys per atomic write
 * (HomeKV: one Set of many keys; LevelDB: one batch), neither syncing each write (HomeKV
 * `--fsync never`, LevelDB's default). Then, on the loaded store: `--reads` random point reads of
 * written keys, one at a time, and `--scans` range scans of 1,000 keys from random starts (1,000 of
 * them by default: the first few hundred find their blocks cold, and 200 measured mostly those).
 *
 * Values (`--values`, scripts/bench/values.ts): `half` (the default) compress to about half their
 * size, as LevelDB's own db_bench makes them; both engines compress their tables (LevelDB with
 * Snappy, FLSM with zstd since format version 2); `random` do not compress; `zeros` are all zeros
 * but one byte, the best case for a compressing engine (figures before 2026-12-05 used them).
 *
 * Write amplification is the bytes the engine's process handed to write(2) while loading and until the
 * engine's background work went quiet (/proc/self/io wchar, which counts every thread: LevelDB's
 * compaction thread, HomeKV's compaction Workers), divided by the user bytes (key + value per set).
 * The table ends with FLSM ÷ LevelDB per measure. `--quick` is a smoke run
 * (test/system/bench-engine.system.ts).
 */
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ClassicLevel } from "classic-level";
import { mulberry32 } from "../src/random.ts";
import { openDurableDatabase } from "../src/storage/durable-database.ts";
import { flag } from "./bench/args.ts";
import { valueKind, valueSource } from "./bench/values.ts";

const quick = process.argv.includes("--quick");
const sets = Number(flag("--sets", quick ? "20000" : "2000000"));
const keyCount = Number(flag("--keys", quick ? "10000" : "1000000"));
const valueSize = Number(flag("--value-size", "100"));
const batchSize = Number(flag("--batch", "100"));
const reads = Number(flag("--reads", quick ? "500" : "50000"));
const scans = Number(flag("--scans", quick ? "10" : "1000"));
const memtableBytes = Number(flag("--memtable-bytes", quick ? String(256 * 1024) : String(64 * 1024 * 1024)));
const values = valueKind(flag("--values", "half"));
const KEY_BYTES = 16;
const SCAN_KEYS = 1_000;
/** Background work is over once wchar has not moved for this long (bounded by QUIET_WAIT_MS_MAX). */
const QUIET_MS = 1_000;
const QUIET_WAIT_MS_MAX = 120_000;
/** A line on stderr every this many sets. */
const PROGRESS_SETS = 1_000_000;

for (const [name, value] of Object.entries({ sets, keyCount, valueSize, batchSize, reads, scans, memtableBytes }))
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not ${value}`);

/** What the benchmark asks of an engine. */
interface Engine {
  write(batch: readonly [string, Uint8Array][]): Promise<void>;
  get(key: string): Promise<Uint8Array | undefined>;
  /** Reads up to `count` keys from `start` on; resolves with how many it read. */
  scan(start: string, count: number): Promise<number>;
  /** The engine's own count of table bytes written into each level (FLSM only). */
  writtenByLevel?(): number[];
  close(): Promise<void>;
}

async function openFlsm(dir: string): Promise<Engine> {
  const db = await openDurableDatabase({ dir, fsync: "never", engine: { kind: "flsm", memtableBytes } });
  return {
    write: async (batch) => {
      await db.write(batch.map(([key, value]) => ({ key, value })));
    },
    get: async (key) => db.read([key]).records[0]?.value,
    scan: async (start, count) => db.scan({ start, limit: count, revision: db.revision }).records.length,
    writtenByLevel: () => db.stats().flsm!.levels.map((level) => level.bytesWritten),
    close: () => db.close(),
  };
}

async function openLevelDb(dir: string): Promise<Engine> {
  const db = new ClassicLevel<string, Uint8Array>(dir, { keyEncoding: "utf8", valueEncoding: "view" });
  await db.open();
  return {
    write: (batch) => db.batch(batch.map(([key, value]) => ({ type: "put" as const, key, value }))),
    get: (key) => db.get(key),
    scan: async (start, count) => {
      let read = 0;
      for await (const _ of db.iterator({ gte: start, limit: count })) read++;
      return read;
    },
    close: () => db.close(),
  };
}

/** Bytes this process has handed to write(2) so far, every thread included. */
function writtenBytes(): number {
  const line = readFileSync("/proc/self/io", "utf8")
    .split("\n")
    .find((entry) => entry.startsWith("wchar:"));
  return Number(line?.slice("wchar:".length));
}

function rssMiB(): number {
  return process.memoryUsage().rss / 2 ** 20;
}

/** Waits until nothing was written for QUIET_MS: the engine's flushes and compactions are done. */
async function quiet(): Promise<void> {
  const deadline = performance.now() + QUIET_WAIT_MS_MAX;
  let last = writtenBytes();
  let still = performance.now();
  while (performance.now() < deadline) {
    await Bun.sleep(100);
    const now = writtenBytes();
    if (now !== last) {
      last = now;
      still = performance.now();
    } else if (performance.now() - still >= QUIET_MS) return;
  }
  console.error(`background writes did not stop within ${QUIET_WAIT_MS_MAX / 1000} s; measuring anyway`);
}

const keyOf = (n: number) => `k${n.toString(16).padStart(KEY_BYTES - 1, "0")}`;

interface Measured {
  setsPerSecond: number;
  writeAmplification: number;
  pointReadUs: number;
  scanMs: number;
  rssAfterLoadMiB: number;
  /** The same after a full collection: what the process holds live, its garbage swept. */
  rssCollectedMiB: number;
  /** Table bytes written into each level per user byte (FLSM only). */
  writtenByLevel?: number[];
}

async function measure(open: (dir: string) => Promise<Engine>): Promise<Measured> {
  const dir = mkdtempSync(join(tmpdir(), "homekv-bench-engine-"));
  try {
    const engine = await open(dir);
    const random = mulberry32(42);
    const nextValue = valueSource(values, valueSize, random);
    const writtenBefore = writtenBytes();
    const started = performance.now();
    for (let done = 0; done < sets; ) {
      const batch: [string, Uint8Array][] = [];
      // Distinct keys per batch (a HomeKV command writes a key once); the value differs per set.
      const seen = new Set<string>();
      while (batch.length < Math.min(batchSize, sets - done)) {
        const key = keyOf(Math.floor(random() * keyCount));
        if (seen.has(key)) continue;
        seen.add(key);
        batch.push([key, nextValue()]);
      }
      await engine.write(batch);
      // A server takes each request in an I/O turn of its own, where the engine's background work
      // (flushes) gets its turns too; a loop of writes that resolve as microtasks would starve it.
      await new Promise((resolve) => setImmediate(resolve));
      done += batch.length;
      // A long load says how far it got (stderr: the report on stdout stays a table).
      if (done % PROGRESS_SETS < batch.length)
        console.error(
          `${only}: ${fmt(done)} sets in ${fmt((performance.now() - started) / 1000)} s, RSS ${fmt(rssMiB())} MiB`,
        );
    }
    const loadSeconds = (performance.now() - started) / 1000;
    await quiet();
    const userBytes = sets * (KEY_BYTES + valueSize);
    const writeAmplification = (writtenBytes() - writtenBefore) / userBytes;
    const writtenByLevel = engine.writtenByLevel?.().map((bytes) => bytes / userBytes);
    const rssAfterLoadMiB = rssMiB();
    Bun.gc(true);
    const rssCollectedMiB = rssMiB();
    let readStarted = performance.now();
    for (let i = 0; i < reads; i++) await engine.get(keyOf(Math.floor(random() * keyCount)));
    const pointReadUs = ((performance.now() - readStarted) * 1000) / reads;
    readStarted = performance.now();
    for (let i = 0; i < scans; i++) await engine.scan(keyOf(Math.floor(random() * keyCount)), SCAN_KEYS);
    const scanMs = (performance.now() - readStarted) / scans;
    await engine.close();
    return {
      setsPerSecond: sets / loadSeconds,
      writeAmplification,
      pointReadUs,
      scanMs,
      rssAfterLoadMiB,
      rssCollectedMiB,
      ...(writtenByLevel && { writtenByLevel }),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Runs one engine in a child process (this script with `--engine`); its last output line is the JSON of what it measured. */
async function inChild(engine: "flsm" | "leveldb"): Promise<Measured> {
  const args = [...process.argv.slice(2), "--engine", engine];
  const proc = Bun.spawn([process.execPath, import.meta.path, ...args], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`the ${engine} run failed (exit ${proc.exitCode})`);
  return JSON.parse(out.trim().split("\n").at(-1)!) as Measured;
}

const fmt = (n: number, digits = 0) =>
  n.toLocaleString("en-US", { maximumFractionDigits: digits, minimumFractionDigits: digits });

const only = flag("--engine", "");
if (only !== "") {
  if (only !== "flsm" && only !== "leveldb") throw new Error(`--engine must be flsm or leveldb, not ${only}`);
  console.log(JSON.stringify(await measure(only === "flsm" ? openFlsm : openLevelDb)));
  process.exit(0);
}

console.log(`# FLSM vs LevelDB (classic-level) — ${new Date().toISOString().slice(0, 10)}`);
console.log(
  `${fmt(sets)} sets of ${KEY_BYTES}-byte keys (${fmt(keyCount)} distinct) and ${valueSize}-byte values (${values}), ${batchSize} per write; ` +
    `${fmt(reads)} point reads, ${fmt(scans)} scans of ${fmt(SCAN_KEYS)} keys; FLSM memtable ${fmt(memtableBytes / 2 ** 20, 2)} MiB\n`,
);
const flsm = await inChild("flsm");
const leveldb = await inChild("leveldb");
const rows: [string, Exclude<keyof Measured, "writtenByLevel">, number, string][] = [
  ["write throughput (sets/s)", "setsPerSecond", 0, "higher is better"],
  ["write amplification (bytes written ÷ user bytes)", "writeAmplification", 2, "lower is better"],
  ["random point read (µs)", "pointReadUs", 1, "lower is better"],
  ["range scan of 1,000 keys (ms)", "scanMs", 2, "lower is better"],
  ["process RSS after the load (MiB)", "rssAfterLoadMiB", 0, "lower is better"],
  ["process RSS after a full collection (MiB)", "rssCollectedMiB", 0, "lower is better"],
];
console.log("| measure | FLSM | LevelDB | FLSM ÷ LevelDB | |");
console.log("| --- | ---: | ---: | ---: | --- |");
for (const [label, key, digits, better] of rows)
  console.log(
    `| ${label} | ${fmt(flsm[key], digits)} | ${fmt(leveldb[key], digits)} | **${(flsm[key] / leveldb[key]).toFixed(2)}×** | ${better} |`,
  );
if (flsm.writtenByLevel)
  console.log(
    `\nFLSM table bytes written into each level per user byte (the rest of its write amplification is the WAL): ${flsm.writtenByLevel
      .map((ratio, level) => `L${level} ${ratio.toFixed(2)}`)
      .join(", ")}`,
  );

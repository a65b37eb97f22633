#!/usr/bin/env bun
/**
 * The FLSM engine's memory bound, through a server: what `homekv serve --engine flsm` holds resident
 * while it loads more data than it may keep in memory, and while it serves reads of it after.
 *
 *   bun scripts/bench-flsm-memory.ts [--gib 4] [--value-size 1024] [--batch 16] [--concurrency 16]
 *     [--memtable-bytes 67108864] [--block-cache-bytes 268435456] [--read-seconds 10] [--quick]
 *
 * One server on a fresh data directory (--fsync always, its default), loaded with `--gib` of values:
 * every key of the keyspace written once (16-byte keys, so that keys × value size is the data),
 * in a random order, `--batch` keys a Set, each Set a value of its own (half random, half repeated,
 * as db_bench's: scripts/bench/values.ts; the tables compress it to about half), `--concurrency`
 * Sets in flight; then `--read-seconds` of random point reads of the loaded keys (64 in flight),
 * which fill the block cache. The server's RSS is sampled every 100 ms throughout (VmRSS of its
 * process) and its peak (VmHWM) read at the end. The bound (the issue's) is memtable + block cache
 * + 256 MiB. Prints one table; `--quick` is a smoke run (test/system/bench-flsm-memory.system.ts).
 * The server and its directory are removed at the end, on failure and on Ctrl-C too.
 */
import { connectH2Pool } from "../src/bench/h2-unary.ts";
import { runBench } from "../src/bench/run-bench.ts";
import { type BenchRequest, benchKey, createWorkload, homekvProtocol } from "../src/bench/workload.ts";
import { mulberry32 } from "../src/random.ts";
import { flsmMemoryBound } from "../src/storage/engine.ts";
import { parseExposition } from "../test/discovery/parse-exposition.ts";
import { checkArguments, flag } from "./bench/args.ts";
import { peakRssBytes, rssBytes, type SettleRule, settledRss } from "./bench/rss.ts";
import { freePort, startHomekv, stopAll, stopAllOnExit } from "./bench/servers.ts";
import { valueSource } from "./bench/values.ts";

const VALUED = [
  "--gib",
  "--value-size",
  "--batch",
  "--concurrency",
  "--memtable-bytes",
  "--block-cache-bytes",
  "--read-seconds",
];
checkArguments(process.argv.slice(2), VALUED, ["--quick"]);
const quick = process.argv.includes("--quick");
const MiB = 2 ** 20;
const gib = Number(flag("--gib", quick ? "0.3" : "4"));
const valueSize = Number(flag("--value-size", "1024"));
const batch = Number(flag("--batch", "16"));
const concurrency = Number(flag("--concurrency", "16"));
// The quick run's bound is 276 MiB either way; larger memtables flush and compact less (write
// amplification 1.7 rather than 2.3), so the 307 MiB load takes two thirds of the time.
const memtableBytes = Number(flag("--memtable-bytes", String(quick ? 16 * MiB : 64 * MiB)));
const blockCacheBytes = Number(flag("--block-cache-bytes", String(quick ? 4 * MiB : 256 * MiB)));
const readSeconds = Number(flag("--read-seconds", quick ? "1" : "10"));
const SAMPLE_MS = 100;
const READERS = 64;
/** A smoke run only reports the settled RSS (its test checks the peak): a shorter window will do. */
const SETTLE: SettleRule = quick
  ? { intervalMs: 250, windowMs: 750, tolerance: 0.02, waitMsMax: 5_000 }
  : { intervalMs: 250, windowMs: 2_000, tolerance: 0.02, waitMsMax: 20_000 };

if (!(gib > 0)) throw new Error(`--gib must be above 0, not ${gib}`);
for (const [name, value] of Object.entries({ valueSize, batch, concurrency, memtableBytes, blockCacheBytes }))
  if (!Number.isInteger(value) || value < 1) throw new Error(`${name} must be a positive integer, not ${value}`);
if (!(readSeconds >= 0)) throw new Error(`--read-seconds must be at least 0, not ${readSeconds}`);

const keys = Math.ceil((gib * 2 ** 30) / valueSize);

/** Every key once, in a random order (a seeded Fisher-Yates shuffle), `batch` keys a Set. */
function loadRequests(): () => BenchRequest {
  const order = new Int32Array(keys).map((_, i) => i);
  const random = mulberry32(7);
  for (let i = keys - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const nextValue = valueSource("half", valueSize, random);
  let next = 0;
  return () => {
    const picked = Array.from(order.subarray(next, Math.min(keys, next + batch)), benchKey);
    next += picked.length;
    return { kind: "set", ...homekvProtocol.set(picked, nextValue()), keys: picked.length };
  };
}

/** The server's RSS every SAMPLE_MS until `stop` is called: the largest seen, and the last. */
function sampleRss(pid: number) {
  let peak = 0;
  let last = 0;
  const take = () => {
    last = rssBytes(pid);
    peak = Math.max(peak, last);
  };
  take();
  const timer = setInterval(take, SAMPLE_MS);
  return {
    stop() {
      clearInterval(timer);
      take();
      return { peak, last };
    },
  };
}

/** The server's /metrics: a metric's samples summed (per level ones: the whole engine's). */
async function scrape(httpPort: number): Promise<(name: string) => number> {
  const { samples } = parseExposition(await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text());
  return (name) => samples.filter((sample) => sample.name === name).reduce((sum, sample) => sum + sample.value, 0);
}

const mib = (bytes: number) => (bytes / MiB).toLocaleString("en-US", { maximumFractionDigits: 0 });

stopAllOnExit();
try {
  const httpPort = freePort();
  const server = await startHomekv([
    "--engine",
    "flsm",
    "--memtable-bytes",
    String(memtableBytes),
    "--block-cache-bytes",
    String(blockCacheBytes),
    "--http-port",
    String(httpPort),
  ]);
  const pool = connectH2Pool(server.address, 1);
  const bound = flsmMemoryBound({ kind: "flsm", memtableBytes, blockCacheBytes });
  const idle = rssBytes(server.pid);

  const loading = sampleRss(server.pid);
  const started = performance.now();
  const load = await runBench({ pool, next: loadRequests(), concurrency, requests: Math.ceil(keys / batch) });
  const loadSeconds = (performance.now() - started) / 1000;
  const loaded = loading.stop();
  if (Object.keys(load.errors).length > 0) throw new Error(`the load's Sets failed: ${JSON.stringify(load.errors)}`);
  const afterLoad = await scrape(httpPort);
  // What the server holds once its flushes and compactions are done and the runtime has handed back
  // what it freed (JavaScriptCore returns freed pages over seconds): the resident cost of the data.
  const { bytes, settled } = await settledRss([server.pid], SETTLE);

  const reading = sampleRss(server.pid);
  const reads =
    readSeconds === 0
      ? undefined
      : await runBench({
          pool,
          next: createWorkload({ op: "get", keys, valueSize, batch: 1, readRatio: 1, seed: 3 }),
          concurrency: READERS,
          durationMs: readSeconds * 1000,
        });
  const read = reading.stop();
  if (reads && Object.keys(reads.errors).length > 0)
    throw new Error(`the reads failed: ${JSON.stringify(reads.errors)}`);
  const peak = peakRssBytes(server.pid);
  const metric = await scrape(httpPort);
  pool.close();

  console.log(
    `# The FLSM engine's memory under a load larger than it may hold — ${new Date().toISOString().slice(0, 10)}`,
  );
  console.log(
    `${keys.toLocaleString("en-US")} keys × ${valueSize}-byte values (${mib(keys * valueSize)} MiB), random order, ` +
      `${batch} a Set, ${concurrency} in flight, --fsync always; --memtable-bytes ${mib(memtableBytes)} MiB, ` +
      `--block-cache-bytes ${mib(blockCacheBytes)} MiB\n`,
  );
  console.log("| measure | value |\n|---|---:|");
  const rows: [string, string][] = [
    [
      "load: MiB/s of values (sets/s)",
      `${mib((keys * valueSize) / loadSeconds)} (${Math.round(keys / loadSeconds).toLocaleString("en-US")})`,
    ],
    ["idle RSS before the load (MiB)", mib(idle)],
    ["peak RSS while loading (MiB)", mib(loaded.peak)],
    ["RSS at the end of the load (MiB)", mib(loaded.last)],
    [`RSS settled after the load${settled ? "" : " (still moving)"} (MiB)`, mib(bytes[0]!)],
    [
      "JS heap at the end of the load, in use / reserved (MiB)",
      `${mib(afterLoad("homekv_heap_used_bytes"))} / ${mib(afterLoad("homekv_heap_total_bytes"))}`,
    ],
    [`peak RSS during ${readSeconds} s of random reads (MiB)`, mib(read.peak)],
    ["reads/s", reads ? Math.round(reads.requestsPerSecond).toLocaleString("en-US") : "—"],
    ["peak RSS of the process's life, VmHWM (MiB)", mib(peak)],
    ["bound: memtable + block cache + 256 MiB (MiB)", mib(bound)],
    ["peak ÷ bound", (peak / bound).toFixed(2)],
    ["tables on disk (MiB)", mib(metric("homekv_flsm_table_bytes"))],
    ["their block indexes and Bloom filters in memory (MiB)", mib(metric("homekv_flsm_table_memory_bytes"))],
    ["write amplification", metric("homekv_flsm_write_amplification").toFixed(2)],
  ];
  for (const [name, value] of rows) console.log(`| ${name} | ${value} |`);
  console.log(`\n${peak <= bound ? "within" : "OVER"} the bound`);
} finally {
  await stopAll();
}

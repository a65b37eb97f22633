#!/usr/bin/env bun
/**
 * The FLSM engine on real files, in process (no server, no WAL):
 *
 *   bun scripts/bench-flsm-disk.ts [--entries 1000000] [--memtable-bytes 67108864] [--dir /tmp/...] [--json]
 *
 *   a. flush throughput: --entries sets of 16-byte keys with 100-byte values (random key order, 100
 *      per command) applied to the store; each memtable flushed to a level-0 table as it fills (the
 *      load waits meanwhile), the last by flushAll; table bytes written per second of flushing
 *      (encoding, writes, fsyncs, manifest), in MiB/s;
 *   b. point reads that miss the memtables (the memtable is empty after flushAll): keys present in
 *      the tables, and keys in none (the Bloom filters answer), µs per read, with the block cache
 *      cold for the first pass and warm for the second.
 *
 * No compaction runs: every table stays at level 0, so a read consults each table whose key range
 * holds the key (all of them, with random keys) — the worst case the picker's compactions bound.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { benchKey } from "../src/bench/workload.ts";
import { realFileSystem } from "../src/io/fs/real-fs.ts";
import { mulberry32 } from "../src/random.ts";
import { openFlsmEngine } from "../src/storage/flsm/disk-engine.ts";
import { flag, median } from "./bench/args.ts";

const VALUE_BYTES = 100;
const OPS_PER_COMMAND = 100;
const READS = 20_000;
const entries = Number(flag("--entries", "1000000"));
const memtableBytes = Number(flag("--memtable-bytes", String(64 << 20)));
const json = process.argv.includes("--json");
const dir = flag("--dir", mkdtempSync(join(tmpdir(), "homekv-bench-flsm-")));

const random = mulberry32(42);
const keyOf = (i: number) => benchKey(i);
const value = new Uint8Array(VALUE_BYTES).fill(120);

const engine = await openFlsmEngine({ fs: realFileSystem, dir, memtableBytes, storeOptions: {}, report: console.warn });
const { store } = engine;
try {
  const loadStarted = performance.now();
  for (let done = 0; done < entries; ) {
    const ops = [];
    const seen = new Set<number>();
    for (; ops.length < Math.min(OPS_PER_COMMAND, entries - done); done++) {
      const index = Math.floor(random() * entries);
      if (seen.has(index)) continue;
      seen.add(index);
      ops.push({ key: keyOf(index), value });
    }
    store.apply({ revision: store.revision + 1, ops });
    // Loading waits while a memtable flushes: the flush's time is its own, not shared with loading.
    if (store.memtableStats().frozen > 0) await store.flushAll();
  }
  await store.flushAll();
  const loadMs = performance.now() - loadStarted;
  const stats = engine.stats();
  const flushMiBps = stats.flushBytes / (1 << 20) / (stats.flushMs / 1_000);

  const timeReads = (keys: readonly string[]) => {
    const micros: number[] = [];
    for (const key of keys) {
      const started = performance.now();
      store.read([key]);
      micros.push((performance.now() - started) * 1_000);
    }
    return { medianUs: median(micros), meanUs: micros.reduce((a, b) => a + b, 0) / micros.length };
  };
  const present = Array.from({ length: READS }, () => keyOf(Math.floor(random() * entries)));
  const missing = Array.from({ length: READS }, (_, i) => `${keyOf(i)}-missing`);
  const result = {
    entries,
    memtableBytes,
    loadSeconds: loadMs / 1_000,
    flushes: stats.flushes,
    tables: stats.levels[0]!.tables,
    flushMiB: stats.flushBytes / (1 << 20),
    flushMiBps,
    readPresentCold: timeReads(present),
    readPresentWarm: timeReads(present),
    readMissing: timeReads(missing),
    blockCache: engine.stats().blockCache,
  };
  if (json) console.log(JSON.stringify(result));
  else {
    console.log(
      `${entries} sets in ${result.loadSeconds.toFixed(1)} s; ${result.flushes} flushes, ${result.tables} tables`,
    );
    console.log(`flush: ${result.flushMiB.toFixed(1)} MiB written at ${flushMiBps.toFixed(1)} MiB/s`);
    for (const [name, read] of Object.entries({
      "get, key in a table, cache cold": result.readPresentCold,
      "get, key in a table, cache warm": result.readPresentWarm,
      "get, key in no table (Bloom)": result.readMissing,
    }))
      console.log(`${name}: median ${read.medianUs.toFixed(1)} µs, mean ${read.meanUs.toFixed(1)} µs`);
  }
} finally {
  await engine.close();
  if (!process.argv.includes("--dir")) rmSync(dir, { recursive: true, force: true });
}

#!/usr/bin/env bun
/**
 * The FLSM engine's memtable measured on its own, in process:
 *
 *   bun scripts/bench-memtable.ts [--entries 1000000] [--keys N] [--json]
 *
 *   a. inserts/s: --entries versions of 16-byte keys with 100-byte values, added in random key
 *      order (--keys distinct keys, default: one per entry; fewer makes versions of the same keys);
 *   b. point reads/s at the current revision (by the key's text, as the store reads), and a full walk forward and backward (entries/s);
 *   c. memory: JS heap bytes added per entry (after a full GC) beside what `Memtable.bytes` counts
 *      per entry: the ratio says how well the memtable's size tracks the memory it takes (the
 *      overhead constants in memtable.ts come from here).
 *
 * Prints one table to stdout; with --json, one JSON object instead.
 */
import { heapStats } from "bun:jsc";
import { benchKey } from "../src/bench/workload.ts";
import { mulberry32 } from "../src/random.ts";
import { Memtable } from "../src/storage/flsm/memtable.ts";
import { flag } from "./bench/args.ts";

const VALUE_BYTES = 100;
const entries = Number(flag("--entries", "1000000"));
const keys = Number(flag("--keys", String(entries)));
const json = process.argv.includes("--json");

function heapBytes(): number {
  Bun.gc(true);
  return heapStats().heapSize;
}

const perSecond = (count: number, ms: number) => Math.round((count / ms) * 1_000);

// Keys drawn before timing: the memtable's work is measured, not the PRNG's or the encoder's.
const random = mulberry32(42);
const keyPool = Array.from({ length: keys }, (_, i) => benchKey(i));
// Every key gets entries / keys versions, in a random order (a Fisher-Yates shuffle).
const order = Array.from({ length: entries }, (_, i) => keyPool[i % keys]!);
for (let i = entries - 1; i > 0; i--) {
  const j = Math.floor(random() * (i + 1));
  [order[i], order[j]] = [order[j]!, order[i]!];
}
const value = new Uint8Array(VALUE_BYTES).fill(7);

const heapBefore = heapBytes();
const memtable = new Memtable();
let started = performance.now();
for (let revision = 1; revision <= entries; revision++) {
  memtable.add(order[revision - 1]!, { revision, value, createRevision: revision, version: 1 });
}
const insertMs = performance.now() - started;
const heapAfter = heapBytes();

started = performance.now();
let found = 0;
for (let i = 0; i < entries; i++) if (memtable.find(order[i]!, entries) !== undefined) found++;
const getMs = performance.now() - started;
if (found !== entries) throw new Error(`point reads found ${found} of ${entries} keys`);

const walk = (reverse: boolean) => {
  const start = performance.now();
  let walked = 0;
  for (const _ of memtable.entries({}, reverse)) walked++;
  if (walked !== memtable.entryCount) throw new Error(`a walk gave ${walked} of ${memtable.entryCount} entries`);
  return performance.now() - start;
};
const forwardMs = walk(false);
const backwardMs = walk(true);

const heapPerEntry = (heapAfter - heapBefore) / entries;
const countedPerEntry = memtable.bytes / entries;
const result = {
  entries,
  keys,
  insertsPerSecond: perSecond(entries, insertMs),
  getsPerSecond: perSecond(entries, getMs),
  walkForwardEntriesPerSecond: perSecond(entries, forwardMs),
  walkBackwardEntriesPerSecond: perSecond(entries, backwardMs),
  heapBytesPerEntry: Math.round(heapPerEntry),
  countedBytesPerEntry: Math.round(countedPerEntry),
  heapOverCounted: Number((heapPerEntry / countedPerEntry).toFixed(2)),
};

if (json) console.log(JSON.stringify(result));
else {
  console.log(
    `memtable: ${entries.toLocaleString()} entries over ${keys.toLocaleString()} keys (16-byte keys, ${VALUE_BYTES}-byte values)`,
  );
  for (const [name, figure] of Object.entries(result)) console.log(`  ${name.padEnd(30)} ${figure.toLocaleString()}`);
}

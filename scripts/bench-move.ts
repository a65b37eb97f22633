#!/usr/bin/env bun
/**
 * What moving a partition costs, on this machine, in one run:
 *
 *   bun scripts/bench-move.ts [--megabytes 100] [--quick]
 *
 * Two nodes found a cluster of 2 partitions of 1 replica (`--partitions 2 --replicas 1`), one
 * partition each. `--megabytes` of values (10 KiB each, 100 keys a Set) are written into n2's
 * partition. Then `homekv cluster remove n2` moves that partition to n1: a learner on n1, caught
 * up, promoted, leadership handed to it, n2 removed and its replica retired. The run measures the
 * time from the removal to the move's end (n1 leads the partition, n2 holds no replica), and what a
 * client sees meanwhile: one probe at a time through n1, alternately a Set and a linearizable Get
 * of a key of the moving partition (p50, p99, max latency; failures), against the same probes
 * before the move.
 *
 * It moves twice, each time on a new cluster: once caught up from n2's whole log (checkpoints
 * never due), once from n2's checkpoint (one due every quarter of the data: n2's log compacted,
 * the learner streamed the newest checkpoint and the entries after it).
 *
 * The client is this project's (HomeKvClient); the processes run from source. Every process is
 * stopped and every data directory removed, on failure and on Ctrl-C too. `--quick` is a smoke run
 * (test/system/bench-move.system.ts).
 */
import { HomeKvClient } from "../src/client/client.ts";
import { checkArguments, flag } from "./bench/args.ts";
import { keysByPartition, startPartitionedCluster } from "./bench/partitioned.ts";
import { stopAll, stopAllOnExit } from "./bench/servers.ts";

checkArguments(process.argv.slice(2), ["--megabytes"], ["--quick"]);
const quick = process.argv.includes("--quick");
const megabytes = Number.parseFloat(flag("--megabytes", quick ? "2" : "100"));
if (!(megabytes > 0)) throw new Error("--megabytes must be above 0");

const VALUE_BYTES = 10 * 1024;
const KEYS_PER_SET = 100;
/** The move must end within this; so must the probes before it. */
const MOVE_TIMEOUT_MS = 600_000;
/** Probes before the move: the baseline the ones during it are read against (a smoke run's need only run). */
const BASELINE_PROBES = quick ? 50 : 200;

interface Latencies {
  count: number;
  failed: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
}

function summary(samples: number[], failed: number): Latencies {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
  return { count: samples.length, failed, p50Ms: at(0.5), p99Ms: at(0.99), maxMs: sorted.at(-1) ?? 0 };
}

/** One probe at a time through `client`, a Set then a Get of `key`, until `done()` or `limit` probes. */
async function probe(client: HomeKvClient, key: string, done: () => boolean, limit: number): Promise<Latencies> {
  const samples: number[] = [];
  let failed = 0;
  for (let i = 0; i < limit && !done(); i++) {
    const started = performance.now();
    try {
      if (i % 2 === 0) await client.set([[key, String(i)]]);
      else await client.get([key]);
      samples.push(performance.now() - started);
    } catch (error) {
      console.error(`probe ${i} failed after ${(performance.now() - started).toFixed(0)} ms: ${error}`);
      failed++;
    }
  }
  return summary(samples, failed);
}

/** Whether n1 leads the partition and n2 holds none: the move is over. */
async function moved(n1: HomeKvClient, n2: HomeKvClient, partition: number): Promise<boolean> {
  const [ring1, ring2] = await Promise.all([n1.ring(), n2.ring().catch(() => undefined)]);
  const p = ring1.partitions[partition]!;
  return p.local && p.leader === "n1" && (ring2 === undefined || !ring2.partitions.some((q) => q.local));
}

/** The flags that keep n2's log whole, or checkpoint it (and compact it) every quarter of the data. */
const CATCH_UP = {
  log: ["--checkpoint-wal-bytes", String(Number.MAX_SAFE_INTEGER)],
  checkpoint: [
    ...["--checkpoint-wal-bytes", String(Math.ceil((megabytes * 1024 * 1024) / 2))],
    // No tail: the log is compacted right to each checkpoint, so the learner cannot catch up from it.
    ...["--raft-log-tail-entries", "0"],
  ],
} as const;

/** One move of n2's partition to n1 on a new cluster, n1 catching up from n2's log or its checkpoint. */
async function moveOnce(catchUp: keyof typeof CATCH_UP) {
  const cluster = await startPartitionedCluster(2, { partitions: 2, replicas: 1 }, CATCH_UP[catchUp]);
  const [n1, n2] = cluster.members.map(
    (member) => new HomeKvClient({ address: member.address, timeoutMs: 30_000 }),
  ) as [HomeKvClient, HomeKvClient];
  try {
    const ring = await n1.ring();
    const partition = ring.partitions.findIndex((p) => p.replicas[0] === "n2");
    const keysNeeded = Math.ceil((megabytes * 1024 * 1024) / VALUE_BYTES);
    const keys = keysByPartition(2, keysNeeded + 1, "move/")[partition]!;
    const probeKey = keys.pop()!;
    const value = new Uint8Array(VALUE_BYTES).fill(120);
    const loadStarted = performance.now();
    for (let i = 0; i < keys.length; i += KEYS_PER_SET)
      await n2.set(keys.slice(i, i + KEYS_PER_SET).map((key) => [key, value] as const));
    const loadSeconds = (performance.now() - loadStarted) / 1000;
    const before = await probe(n1, probeKey, () => false, BASELINE_PROBES);

    let done = false;
    const removal = performance.now();
    await n1.clusterRemove("n2");
    const during = probe(n1, probeKey, () => done, 1_000_000);
    const deadline = removal + MOVE_TIMEOUT_MS;
    while (!(await moved(n1, n2, partition))) {
      if (performance.now() > deadline) throw new Error(`the move did not end within ${MOVE_TIMEOUT_MS} ms`);
      await Bun.sleep(20); // polling the ring for the move's end, not synchronising a test
    }
    const moveSeconds = (performance.now() - removal) / 1000;
    done = true;
    const duringMove = await during;
    const [check] = (await n1.get([keys[0]!])).records;
    if (check?.value?.byteLength !== VALUE_BYTES) throw new Error("a key written before the move is missing after it");
    return { catchUp, keys: keys.length, moveSeconds, loadSeconds, before, duringMove };
  } finally {
    n1.close();
    n2.close();
    await cluster.stop();
  }
}

stopAllOnExit();
try {
  const runs = [await moveOnce("log"), await moveOnce("checkpoint")];
  const row = (name: string, l: Latencies) =>
    `| ${name} | ${l.count} | ${l.failed} | ${l.p50Ms.toFixed(1)} | ${l.p99Ms.toFixed(1)} | ${l.maxMs.toFixed(1)} |`;
  console.log(
    `Moved one partition of ${megabytes} MB (${runs[0]!.keys} keys of ${VALUE_BYTES / 1024} KiB, loaded in ${runs.map((r) => r.loadSeconds.toFixed(1)).join(" and ")} s) from n2 to n1:\n`,
  );
  console.log("| n1 caught up from | move s | MB/s |");
  console.log("|---|---:|---:|");
  for (const r of runs)
    console.log(`| n2's ${r.catchUp} | ${r.moveSeconds.toFixed(1)} | ${(megabytes / r.moveSeconds).toFixed(1)} |`);
  console.log("\n| probes through n1 (Set, Get alternately) | count | failed | p50 ms | p99 ms | max ms |");
  console.log("|---|---:|---:|---:|---:|---:|");
  for (const r of runs) {
    console.log(row(`before the move (${r.catchUp})`, r.before));
    console.log(row(`during the move (${r.catchUp})`, r.duringMove));
  }
  console.log(JSON.stringify({ megabytes, runs }));
} finally {
  await stopAll();
}

#!/usr/bin/env bun
/**
 * Group commit at work: single-key Sets under `--fsync always`, one writer versus 64 concurrent
 * writers, against one real server on a fresh data directory, side by side in one run.
 *
 *   bun scripts/bench-group-commit.ts [--duration 5s] [--warmup 2s] [--rounds 3]
 *
 * Each round runs one writer, then 64, each for --duration; the ratio of a round compares runs
 * seconds apart. One writer waits for an fsync per write, and this machine's fsync time drifts by 2×
 * within minutes, so single rounds swing (9.8–13.1× in five of them): the median of the rounds'
 * ratios is the figure. Each run starts with --warmup (not counted): the JIT of the server and of
 * the load generator compiles its hot paths in the first seconds. Prints each round (throughput,
 * writes per fsync, p99) and the median.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { flag, median } from "./bench/args.ts";

const root = resolve(import.meta.dir, "..");
const main = join(root, "src", "main.ts");
const duration = flag("--duration", "5s");
const warmup = flag("--warmup", "2s");
const rounds = Number(flag("--rounds", "3"));
if (!Number.isInteger(rounds) || rounds < 1 || rounds > 20) {
  console.error(`bench-group-commit: --rounds must be a whole number from 1 to 20, not ${flag("--rounds", "")}`);
  process.exit(2);
}

const dataDir = mkdtempSync(join(tmpdir(), "homekv-group-commit-"));
const server = Bun.spawn([process.execPath, main, "serve", "-p", "0", "--data-dir", dataDir, "--fsync", "always"], {
  stdout: "pipe",
  stderr: "inherit",
});
try {
  const port = await startedPort(server.stdout);
  const rows: { round: number; writers: number; rps: number; writesPerFsync: number; p99Ms: number }[] = [];
  const ratios: number[] = [];
  for (let round = 1; round <= rounds; round++) {
    for (const writers of [1, 64]) {
      const before = await metrics(port);
      const report = await homekv([
        "bench",
        "-p",
        String(port),
        "--op",
        "set",
        "-c",
        String(writers),
        "--duration",
        duration,
        "--warmup",
        warmup,
        "--json",
      ]);
      const after = await metrics(port);
      rows.push({
        round,
        writers,
        rps: Math.round(report.requestsPerSecond),
        // Over the warm-up too: both counters are the server's, for the same span.
        writesPerFsync: Number(
          ((after.wal_records - before.wal_records) / (after.wal_fsyncs - before.wal_fsyncs)).toFixed(1),
        ),
        p99Ms: report.latencyUs.p99 / 1000,
      });
    }
    ratios.push(rows.at(-1)!.rps / rows.at(-2)!.rps);
  }
  console.table(rows);
  console.log(`rounds: ${ratios.map((r) => `${r.toFixed(1)}×`).join(", ")}`);
  console.log(
    `64 writers / 1 writer: ${median(ratios).toFixed(1)}× (median of ${rounds} round(s); fsync always, ${duration} each)`,
  );
} finally {
  server.kill("SIGTERM");
  await server.exited;
  rmSync(dataDir, { recursive: true, force: true });
}

/** What `homekv ... --json` prints: the fields read here, of `bench` and `metrics`. */
interface JsonOutput {
  requestsPerSecond: number;
  latencyUs: { p99: number };
  wal_records: number;
  wal_fsyncs: number;
}

async function homekv(args: string[]): Promise<JsonOutput> {
  const proc = Bun.spawn([process.execPath, main, ...args], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`homekv ${args.join(" ")} failed`);
  return JSON.parse(out);
}

function metrics(port: number): Promise<JsonOutput> {
  return homekv(["metrics", "-p", String(port), "--json"]);
}

/** Resolves with the port from the server's start line, and keeps reading its output after that. */
function startedPort(stdout: ReadableStream<Uint8Array>): Promise<number> {
  return new Promise((resolve, reject) => {
    let seen = "";
    (async () => {
      for await (const chunk of stdout) {
        seen += new TextDecoder().decode(chunk);
        const match = /listening on [^ ]*:(\d+)/.exec(seen);
        if (match) resolve(Number(match[1]));
      }
      reject(new Error(`server did not start:\n${seen}`));
    })();
  });
}

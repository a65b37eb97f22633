#!/usr/bin/env bun
/**
 * Group commit at work: single-key Sets under `--fsync always`, one writer versus 64 concurrent
 * writers, against one real server on a fresh data directory, side by side in one run.
 *
 *   bun scripts/bench-group-commit.ts [--duration 5s]
 *
 * Prints both throughputs, fsyncs per request, and the ratio.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";

const root = resolve(import.meta.dir, "..");
const main = join(root, "src", "main.ts");
const duration = process.argv.includes("--duration") ? process.argv[process.argv.indexOf("--duration") + 1]! : "5s";

const dataDir = mkdtempSync(join(tmpdir(), "homekv-group-commit-"));
const server = Bun.spawn([process.execPath, main, "serve", "-p", "0", "--data-dir", dataDir, "--fsync", "always"], { stdout: "pipe", stderr: "inherit" });
try {
  const port = await startedPort(server.stdout);
  const rows: { writers: number; rps: number; fsyncsPerRequest: number; p99Ms: number }[] = [];
  for (const writers of [1, 64]) {
    const before = await metrics(port);
    const report = await homekv(["bench", "-p", String(port), "--op", "set", "-c", String(writers), "--duration", duration, "--json"]);
    const after = await metrics(port);
    rows.push({
      writers,
      rps: Math.round(report.requestsPerSecond),
      fsyncsPerRequest: (after.wal_fsyncs - before.wal_fsyncs) / report.requests,
      p99Ms: report.latencyUs.p99 / 1000,
    });
  }
  console.table(rows);
  console.log(`64 writers / 1 writer: ${(rows[1]!.rps / rows[0]!.rps).toFixed(1)}× (fsync always, ${duration} each)`);
} finally {
  server.kill("SIGTERM");
  await server.exited;
  rmSync(dataDir, { recursive: true, force: true });
}

async function homekv(args: string[]): Promise<any> {
  const proc = Bun.spawn([process.execPath, main, ...args], { stdout: "pipe", stderr: "inherit" });
  const out = await new Response(proc.stdout).text();
  if ((await proc.exited) !== 0) throw new Error(`homekv ${args.join(" ")} failed`);
  return JSON.parse(out);
}

function metrics(port: number): Promise<any> {
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

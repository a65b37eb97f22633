#!/usr/bin/env bun
/**
 * One log for many Raft groups, on the real disk: G groups each persist one small entry (and
 * their hard state) per round, all groups at once, for R rounds; once into one RaftLogEngine,
 * once into G DurableRaftLogs (a directory each). Printed: persists per second and the fsyncs
 * (file syncs, counted through the FileSystem) per persist, for each.
 *
 *   bun scripts/bench-group-log.ts [--groups 256] [--rounds 50] [--dir /some/disk]
 *
 * The data goes in a fresh temporary directory (under --dir when given), removed afterwards.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DurableRaftLog } from "../src/cluster/raft/durable-log.ts";
import { RaftLogEngine } from "../src/cluster/raft/group-log-engine.ts";
import type { PersistentRaftLog } from "../src/cluster/raft/storage.ts";
import { realFileSystem } from "../src/io/fs/real-fs.ts";
import { interceptWrites } from "../test/helpers/storage.ts";
import { flag } from "./bench/args.ts";

const groups = Number(flag("--groups", "256"));
const rounds = Number(flag("--rounds", "50"));
for (const [name, value, most] of [
  ["--groups", groups, 4096],
  ["--rounds", rounds, 10_000],
] as const) {
  if (!Number.isInteger(value) || value < 1 || value > most) {
    console.error(`bench-group-log: ${name} must be a whole number from 1 to ${most}`);
    process.exit(2);
  }
}
const root = mkdtempSync(join(flag("--dir", tmpdir()), "homekv-group-log-"));
const payload = new TextEncoder().encode("a small entry of about sixty bytes, as a one-key Set would be");

let syncs = 0;
const fs = interceptWrites(realFileSystem, (call, run) => {
  if (call === "sync") syncs++;
  return run();
});

/** Runs the rounds on `logs`; persists per second and fsyncs per persist. */
async function measure(logs: readonly PersistentRaftLog[]): Promise<{ perSecond: number; syncsPerPersist: number }> {
  syncs = 0;
  const started = performance.now();
  for (let round = 1; round <= rounds; round++) {
    await Promise.all(
      logs.map((log) =>
        log.persist({ term: 1, vote: 1, commit: round - 1 }, [{ index: round, term: 1, data: payload }]),
      ),
    );
  }
  const seconds = (performance.now() - started) / 1000;
  const persists = rounds * logs.length;
  return { perSecond: persists / seconds, syncsPerPersist: syncs / persists };
}

try {
  const engine = await RaftLogEngine.open(fs, join(root, "engine"));
  const shared = await measure(Array.from({ length: groups }, (_, i) => engine.group(i + 1)));
  await engine.close();
  const own = await Promise.all(
    Array.from({ length: groups }, (_, i) => DurableRaftLog.open(fs, join(root, "own", String(i + 1)))),
  );
  const separate = await measure(own);
  await Promise.all(own.map((log) => log.close()));

  console.log(`# ${groups} Raft groups, one small entry each per round, ${rounds} rounds, on ${root}\n`);
  console.log("| log | persists/s | fsyncs per persist |");
  console.log("| --- | ---: | ---: |");
  for (const [name, result] of [
    ["one RaftLogEngine", shared],
    [`${groups} DurableRaftLogs`, separate],
  ] as const) {
    console.log(`| ${name} | ${Math.round(result.perSecond)} | ${result.syncsPerPersist.toFixed(4)} |`);
  }
  console.log(
    `\nThe engine's persists per second are ${(shared.perSecond / separate.perSecond).toFixed(1)}× the others'.`,
  );
} finally {
  rmSync(root, { recursive: true, force: true });
}

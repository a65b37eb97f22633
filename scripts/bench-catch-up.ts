/**
 * Catch-up of an empty member to a large replicated store: how long from `homekv serve` starting on
 * an empty data directory until it serves a linearizable read of the last write, when the only way
 * to catch up is the leader's snapshot (its Raft log compacted behind a checkpoint).
 *
 *   bun scripts/bench-catch-up.ts [--keys 1000000] [--value-bytes 100]
 *
 * Three members on loopback (--raft-tick 50ms); member n3 is stopped and its directory emptied,
 * the others take `keys` keys in batches of 1,000, checkpoint (the Checkpoint RPC), then take
 * enough small writes for the log to be compacted past the checkpoint; then n3 starts empty.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import type { Subprocess } from "bun";
import { HomeKvClient } from "../src/client/client.ts";
import { freePort } from "./bench/servers.ts";

const { values: args } = parseArgs({
  options: { keys: { type: "string", default: "1000000" }, "value-bytes": { type: "string", default: "100" } },
});
const KEYS = Number(args.keys);
const VALUE_BYTES = Number(args["value-bytes"]);
const BATCH = 1_000;
const TAIL = 100;
const MAIN = resolve(import.meta.dir, "..", "src", "main.ts");

interface Member {
  name: string;
  dir: string;
  port: number;
  peerPort: number;
  proc?: Subprocess;
  output: string;
}

const root = mkdtempSync(join(tmpdir(), "homekv-catch-up-"));
const members: Member[] = [];
for (const name of ["n1", "n2", "n3"])
  members.push({ name, dir: join(root, name), port: freePort(), peerPort: freePort(), output: "" });
const cluster = members.map((m) => `${m.name}=127.0.0.1:${m.peerPort}`).join(",");

function start(member: Member): void {
  member.output = "";
  const proc = Bun.spawn(
    [
      process.execPath,
      MAIN,
      "serve",
      "--host",
      "127.0.0.1",
      "-p",
      String(member.port),
      "--node-id",
      member.name,
      "--data-dir",
      member.dir,
      "--peer-port",
      String(member.peerPort),
      "--initial-cluster",
      cluster,
      "--raft-tick",
      "50ms",
      "--raft-log-tail-entries",
      String(TAIL),
    ],
    { stdout: "pipe", stderr: "pipe", env: { ...process.env, NO_COLOR: "1", HOMEKV_CLUSTER_TOKEN: "bench" } },
  );
  member.proc = proc;
  const collect = async (stream: ReadableStream<Uint8Array>) => {
    const decoder = new TextDecoder();
    for await (const chunk of stream) member.output += decoder.decode(chunk, { stream: true });
  };
  void collect(proc.stdout);
  void collect(proc.stderr);
}

async function stop(member: Member, signal: NodeJS.Signals = "SIGTERM"): Promise<void> {
  if (member.proc && member.proc.exitCode === null) member.proc.kill(signal);
  await member.proc?.exited;
}

/** Polls `attempt` every `intervalMs` until it returns a value, for `timeoutMs` at most. */
async function poll<T>(what: string, attempt: () => Promise<T | undefined>, timeoutMs: number, intervalMs = 20) {
  const deadline = performance.now() + timeoutMs;
  for (let i = 0; performance.now() < deadline && i < timeoutMs / intervalMs + 1; i++) {
    const value = await attempt().catch(() => undefined);
    if (value !== undefined) return value;
    await Bun.sleep(intervalMs);
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
}

const clientOf = (member: Member) => new HomeKvClient({ address: `127.0.0.1:${member.port}`, timeoutMs: 30_000 });

try {
  for (const member of members) start(member);
  const n3 = members[2]!;
  // The leader: whichever member takes a write.
  const leader = await poll(
    "a leader",
    async () => {
      for (const member of members.slice(0, 2)) {
        const client = clientOf(member);
        try {
          await client.set({ probe: "1" });
          return member;
        } catch {
          client.close();
        }
      }
      return undefined;
    },
    30_000,
  );
  await stop(n3, "SIGKILL");
  rmSync(n3.dir, { recursive: true, force: true });
  const client = clientOf(leader);
  const value = "v".repeat(VALUE_BYTES);
  const loadStarted = performance.now();
  // Four batches in flight: the Raft log takes them in order.
  const batches = Math.ceil(KEYS / BATCH);
  for (let b = 0; b < batches; b += 4) {
    const writes = [];
    for (let j = b; j < Math.min(batches, b + 4); j++) {
      const entries: [string, string][] = [];
      for (let k = j * BATCH; k < Math.min(KEYS, (j + 1) * BATCH); k++)
        entries.push([`key-${String(k).padStart(8, "0")}`, value]);
      writes.push(client.set(entries));
    }
    await Promise.all(writes);
  }
  console.log(`loaded ${KEYS} keys in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`);
  const checkpoint = await client.checkpoint();
  console.log(`checkpoint: ${JSON.stringify(checkpoint)}`);
  let last = 0;
  for (let i = 0; i <= TAIL + 10; i++) last = (await client.set({ last: String(i) })).revision;
  await poll(
    "the leader's log to be compacted",
    async () =>
      (await Array.fromAsync(new Bun.Glob("*.raftsnap").scan(join(leader.dir, "raft")))).length > 0 ? true : undefined,
    30_000,
  );

  const started = performance.now();
  start(n3);
  const theirs = clientOf(n3);
  await poll(
    "the new member to read the last write",
    async () => {
      const { records, revision } = await theirs.get(["last"]);
      return revision >= last && records[0]?.value !== undefined ? true : undefined;
    },
    300_000,
  );
  const seconds = (performance.now() - started) / 1000;
  const installed = /installed the leader's snapshot[^\n]*/.exec(n3.output)?.[0] ?? "no snapshot installed";
  console.log(
    `an empty member served a linearizable read of the last write ${seconds.toFixed(1)} s after it started (${installed})`,
  );
  client.close();
  theirs.close();
} finally {
  for (const member of members) await stop(member);
  rmSync(root, { recursive: true, force: true });
}

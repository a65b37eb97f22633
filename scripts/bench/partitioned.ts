/**
 * Servers for the partitions benchmark: a partitioned cluster of N `homekv serve --partitions P`
 * members, or one plain `homekv serve`, each process from source on loopback with a scratch
 * directory (its data directory and its stderr) whose name starts `bench-partitions-`, registered
 * with `stopAll` (servers.ts), which stops it and removes the directory, on failure and on Ctrl-C too.
 */
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { connectH2Pool } from "../../src/bench/h2-unary.ts";
import { homekvProtocol } from "../../src/bench/workload.ts";
import { partitionOf } from "../../src/cluster/ring/partition-of.ts";
import { RingResponse } from "../../src/gen/homekv_service.ts";
import { answersOk, freePort, type RunningServer, track, waitFor } from "./servers.ts";

/** A command-line pattern (pgrep -f) for every process this module starts: their data directories. */
export const SCRATCH_PREFIX = "bench-partitions-";
const START_WAIT_MS = 60_000;
const root = resolve(import.meta.dir, "..", "..");

export interface BenchServers {
  /** "single server", or "3 nodes". */
  label: string;
  members: readonly RunningServer[];
  /** Partitions each member leads, in member order, as the members' replicas see it once started (empty for a single server). */
  led: number[];
  stop(): Promise<void>;
}

/**
 * `perPartition` keys of each of `partitions` partitions, drawn from `prefix` and a counter: the
 * key sets the benchmark picks from, to write within one partition or across several.
 */
export function keysByPartition(partitions: number, perPartition: number, prefix: string): string[][] {
  const pools: string[][] = Array.from({ length: partitions }, () => []);
  const encoder = new TextEncoder();
  let filled = 0;
  // Each key lands in a partition with probability 1/P: 100× the keys wanted is far more than enough.
  for (let i = 0; filled < partitions && i < partitions * perPartition * 100; i++) {
    const key = `${prefix}${String(i).padStart(10, "0")}`;
    const pool = pools[partitionOf(encoder.encode(key), partitions)]!;
    if (pool.length >= perPartition) continue;
    pool.push(key);
    if (pool.length === perPartition) filled++;
  }
  if (filled < partitions) throw new Error(`could not draw ${perPartition} keys for each of ${partitions} partitions`);
  return pools;
}

function spawnMember(name: string, args: (dataDir: string) => string[]): RunningServer & { logTail(): string } {
  const scratch = mkdtempSync(join(tmpdir(), `${SCRATCH_PREFIX}${name}-`));
  const logFile = join(scratch, "stderr.log");
  const port = freePort();
  const proc = Bun.spawn(
    [process.execPath, join(root, "src", "main.ts"), "serve", "-p", String(port), ...args(join(scratch, "data"))],
    { stdout: "ignore", stderr: Bun.file(logFile) },
  );
  const server = track(name, () => proc, port, scratch);
  return Object.assign(server, {
    logTail: () => {
      const state = proc.exitCode === null ? "running" : `exited ${proc.exitCode}`;
      return `${name} (${state}):\n${readFileSync(logFile, "utf8").split("\n").slice(-6).join("\n")}`;
    },
  });
}

async function started(
  label: string,
  members: (RunningServer & { logTail(): string })[],
  ready: (member: RunningServer) => Promise<boolean>,
): Promise<void> {
  try {
    for (const member of members)
      await waitFor(`${label}: ${member.name} to take writes`, () => ready(member), START_WAIT_MS);
  } catch (error) {
    throw new Error(`${(error as Error).message}; logs:\n${members.map((m) => m.logTail()).join("\n")}`);
  }
}

const stopper = (members: readonly RunningServer[]) => async () => {
  await Promise.all(members.map((member) => member.stop()));
};

/** One plain `homekv serve --data-dir` (an fsync per commit, the default), once it takes a Set. */
export async function startSingleServer(): Promise<BenchServers> {
  const member = spawnMember("single", (dataDir) => ["--data-dir", dataDir]);
  const probe = homekvProtocol.set(["probe"], new Uint8Array(1));
  await started("single server", [member], (m) => answersOk(m.address, probe));
  return { label: "single server", members: [member], led: [], stop: stopper([member]) };
}

/**
 * `count` members founding a partitioned cluster (`--initial-cluster`, the default --raft-tick and
 * fsync per commit), started once each member takes a Set with a key in every partition: every
 * partition has elected its leader and every member can route to it.
 */
export async function startPartitionedCluster(
  count: number,
  shape: { partitions: number; replicas: number },
  /** More flags for every member's `serve`. */
  args: readonly string[] = [],
): Promise<BenchServers> {
  const names = Array.from({ length: count }, (_, i) => `n${i + 1}`);
  const peerPorts = names.map(() => freePort());
  const initialCluster = names.map((name, i) => `${name}=127.0.0.1:${peerPorts[i]}`).join(",");
  const members = names.map((name, i) =>
    spawnMember(name, (dataDir) => [
      ...["--node-id", name, "--peer-port", String(peerPorts[i]), "--data-dir", dataDir],
      ...["--initial-cluster", initialCluster],
      ...["--partitions", String(shape.partitions), "--replicas", String(shape.replicas)],
      ...args,
    ]),
  );
  const label = `${count} node${count === 1 ? "" : "s"}`;
  const probe = homekvProtocol.set(
    keysByPartition(shape.partitions, 1, "probe/").map(([key]) => key!),
    new Uint8Array(1),
  );
  await started(label, members, (m) => answersOk(m.address, probe));
  return { label, members, led: await leadersPerMember(members), stop: stopper(members) };
}

/** How many partitions each member leads, as the members' own replicas name the leaders. */
async function leadersPerMember(members: readonly RunningServer[]): Promise<number[]> {
  const leaderOf = new Map<number, string>();
  for (const member of members) {
    const pool = connectH2Pool(member.address, 1, { timeoutMs: 2_000 });
    try {
      const answer = await pool.call("/homekv_service.HomeKvService/Ring", new Uint8Array());
      if (answer.status !== 0) throw new Error(`Ring on ${member.name}: ${answer.message}`);
      for (const partition of RingResponse.decode(answer.body).partitions)
        if (partition.local && partition.leader !== "") leaderOf.set(partition.partition, partition.leader);
    } finally {
      pool.close();
    }
  }
  return members.map((member) => [...leaderOf.values()].filter((leader) => leader === member.name).length);
}

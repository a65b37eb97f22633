import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildBinary } from "../scripts/build.ts";
import { HomeKvClient } from "../src/client/client.ts";
import { parseExposition } from "./discovery/parse-exposition.ts";
import { text } from "./helpers/bytes.ts";
import {
  type HomekvCommand,
  runHomekv,
  type ServerProcess,
  startServerProcess,
  staticCluster,
} from "./helpers/processes.ts";
import { waitFor } from "./helpers/wait.ts";

/**
 * The compiled binary, tested as a binary: built into a scratch directory with no node_modules and
 * no .proto anywhere near it, then run from there as both server and client.
 */
let scratch: string;
let binary: HomekvCommand;
let server: ServerProcess;

beforeAll(async () => {
  scratch = mkdtempSync(join(tmpdir(), "homekv-bin-"));
  binary = [buildBinary(join(scratch, "homekv"))];
  expect(existsSync(join(scratch, "node_modules"))).toBe(false);
  server = await startServerProcess([], { command: binary, cwd: scratch });
}, 120_000);

afterAll(async () => {
  expect(await server.stop("SIGINT")).toBe(0);
  rmSync(scratch, { recursive: true, force: true });
});

test("serve, then set/get/del/metrics through the binary's own client commands", async () => {
  const run = (...args: string[]) => runHomekv([...args, "-p", String(server.port)], { command: binary, cwd: scratch });

  const set = await run("set", "trail=big_cedder", "people=5", "start_time=12:00");
  expect(set).toMatchObject({ exitCode: 0, stderr: "" });
  expect(set.stdout).toBe("OK (revision 1)\n");

  const get = await run("get", "trail", "people", "nope");
  expect(get.exitCode).toBe(0);
  expect(get.stdout).toBe('trail   "big_cedder"\npeople  "5"\nnope    (nil)\n');

  const del = await run("del", "trail", "nope");
  expect(del.stdout).toBe("deleted 1 (revision 2)\n");

  const metrics = await run("metrics", "--json");
  expect(JSON.parse(metrics.stdout)).toMatchObject({
    keys_count: 2,
    values_size_in_bytes: 6,
    cmds_count: 3,
    revision: 2,
  });
});

test("the binary knows its version and its help", async () => {
  const version = await runHomekv(["--version"], { command: binary, cwd: scratch });
  expect(version.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  const help = await runHomekv(["serve", "--help"], { command: binary, cwd: scratch });
  expect(help.exitCode).toBe(0);
  expect(help.stdout).toContain("--max-request-bytes");
});

test("the binary's flsm engine flushes and compacts in its Workers, and a restart reads everything back", async () => {
  const dataDir = join(scratch, "flsm-data");
  const args = ["--data-dir", dataDir, "--engine", "flsm", "--memtable-bytes", "64KiB", "--http-port", "0"];
  const flsm = await startServerProcess(args, { command: binary, cwd: scratch });
  const value = "v".repeat(200);
  const keys = Array.from({ length: 2_000 }, (_, i) => `flsm/${String(i).padStart(5, "0")}`);
  const client = new HomeKvClient({ address: flsm.address });
  try {
    for (let i = 0; i < keys.length; i += 50)
      await client.set(Object.fromEntries(keys.slice(i, i + 50).map((key) => [key, value])));
    // 400 KiB through 64 KiB memtables: flushed tables (the flush Worker), level 0 compacted (the compaction Worker).
    const http = /HTTP endpoint on (http:\/\/127\.0\.0\.1:\d+)/.exec(flsm.output())?.[1];
    await waitFor(
      async () => {
        const exposition = parseExposition(await (await fetch(`${http}/metrics`)).text());
        return (exposition.value("homekv_flsm_compactions_total") ?? 0) > 0;
      },
      { what: "a compaction in the binary's Worker", detail: () => flsm.output() },
    );
  } finally {
    client.close();
  }
  expect(await flsm.stop("SIGTERM")).toBe(0);
  expect(flsm.output()).not.toContain("failed");
  const again = await startServerProcess(args, { command: binary, cwd: scratch });
  const reader = new HomeKvClient({ address: again.address });
  try {
    const { records } = await reader.get(keys);
    expect(records.filter((record) => record.value !== undefined && text(record.value) === value).length).toBe(
      keys.length,
    );
  } finally {
    reader.close();
    expect(await again.stop("SIGTERM")).toBe(0);
  }
}, 60_000);

test("three binaries form a cluster: write through one, read through another, kill -9 the leader, keep writing", async () => {
  const names = ["n1", "n2", "n3"];
  const cluster = staticCluster(names);
  const members = await Promise.all(
    names.map((name) =>
      startServerProcess([...cluster.memberArgs(name), "--data-dir", join(scratch, `cluster-${name}`)], {
        command: binary,
        cwd: scratch,
        env: { HOMEKV_CLUSTER_TOKEN: "binary-test" },
      }),
    ),
  );
  const endpoints = (of: readonly ServerProcess[]) => ["--endpoints", of.map((m) => m.address).join(",")];
  const run = (...args: string[]) => runHomekv(args, { command: binary, cwd: scratch });
  try {
    const first = await waitFor(async () => (await run("set", "-p", String(members[0]!.port), "k=1")).exitCode === 0, {
      what: "a write through n1 once a leader is elected",
      timeoutMs: 20_000,
    });
    expect(first).toBe(true);
    expect((await run("get", "k", "-p", String(members[2]!.port))).stdout).toBe('k  "1"\n');
    const status = JSON.parse((await run("cluster", "status", "--json", ...endpoints(members))).stdout);
    const leaderName = status.leader as string;
    const leader = members[names.indexOf(leaderName)]!;
    leader.proc.kill("SIGKILL");
    await leader.proc.exited;
    const survivors = members.filter((m) => m !== leader);
    await waitFor(
      async () => (await run("set", "k=2", "--request-id", "after-kill", ...endpoints(survivors))).exitCode === 0,
      {
        what: "a write through the survivors after the leader's death",
        timeoutMs: 20_000,
      },
    );
    expect((await run("get", "k", ...endpoints(survivors))).stdout).toBe('k  "2"\n');
  } finally {
    await Promise.all(members.map((member) => member.stop("SIGKILL")));
  }
}, 60_000);

test("three binaries form a partitioned cluster: a Set across partitions through one, read and ring through another, kill -9 one, keep writing", async () => {
  const names = ["p1", "p2", "p3"];
  const cluster = staticCluster(names);
  const members = await Promise.all(
    names.map((name) =>
      startServerProcess(
        [
          ...cluster.memberArgs(name),
          ...["--data-dir", join(scratch, `partitioned-${name}`), "--partitions", "8", "--replicas", "3"],
        ],
        { command: binary, cwd: scratch, env: { HOMEKV_CLUSTER_TOKEN: "binary-test" } },
      ),
    ),
  );
  const run = (...args: string[]) => runHomekv(args, { command: binary, cwd: scratch });
  const port = (member: ServerProcess) => ["-p", String(member.port)];
  const pairs = Array.from({ length: 8 }, (_, i) => `user/${i}=v${i}`);
  try {
    await waitFor(async () => (await run("set", ...port(members[0]!), ...pairs)).exitCode === 0, {
      what: "a Set across partitions through p1 once the cluster is founded",
      timeoutMs: 30_000,
    });
    const read = await run("get", ...port(members[1]!), "user/0", "user/7");
    expect(read.stdout).toBe('user/0  "v0"\nuser/7  "v7"\n');
    const ring = JSON.parse((await run("ring", "--json", ...port(members[2]!))).stdout);
    expect(ring.partitions).toHaveLength(8);
    expect((await run("checkpoint", ...port(members[1]!))).exitCode).toBe(0);
    members[0]!.proc.kill("SIGKILL");
    await members[0]!.proc.exited;
    await waitFor(
      async () =>
        (await run("set", ...port(members[1]!), "--request-id", "after-kill", ...pairs.slice(0, 2))).exitCode === 0,
      { what: "a write through p2 after p1's death", timeoutMs: 20_000 },
    );
    expect((await run("get", ...port(members[2]!), "user/1")).stdout).toBe('user/1  "v1"\n');
  } finally {
    await Promise.all(members.map((member) => member.stop("SIGKILL")));
  }
}, 90_000);

import { afterEach, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { freePorts } from "../helpers/free-ports.ts";
import { runHomekv, type ServerProcess, scratchDir, startServerProcess, staticCluster } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A replicated cluster backed up as an operator does it, with real processes and the CLI: `homekv
 * backup` through a follower while the cluster runs; the backup refused as a cluster member's data
 * directory (the member would start empty beside it); a single server started on it.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const ENV = { env: { HOMEKV_CLUSTER_TOKEN: "test-token" } };

function scratch(prefix: string): string {
  const dir = scratchDir(prefix);
  cleanups.push(dir.cleanup);
  return dir.path;
}

async function serve(args: string[]): Promise<ServerProcess> {
  const server = await startServerProcess(args, ENV);
  cleanups.push(() => server.stop("SIGKILL"));
  return server;
}

const on = (server: ServerProcess, ...args: string[]) => runHomekv([...args, "-p", String(server.port)]);
const metrics = async (server: ServerProcess) => JSON.parse((await on(server, "metrics", "--json")).stdout);
const KEYS = Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, "0")}`);

test("a cluster backed up through a follower holds every acknowledged write; a cluster member refuses to start on it, a single server serves it", async () => {
  const names = ["n1", "n2", "n3"];
  const cluster = staticCluster(names);
  const members: ServerProcess[] = [];
  for (const name of names)
    members.push(await serve([...cluster.memberArgs(name), "--data-dir", scratch(`homekv-${name}-`)]));
  // Written through whichever member takes them (any does once a leader is known).
  for (const key of KEYS)
    await waitFor(
      async () => {
        for (const member of members) if ((await on(member, "set", `${key}=v-${key}`)).exitCode === 0) return true;
        return false;
      },
      { what: `a member to take ${key}`, timeoutMs: 20_000, intervalMs: 50 },
    );
  await on(members[0]!, "del", "k00");
  const leader = await waitFor(
    async () => {
      const roles = await Promise.all(members.map(async (m) => (await metrics(m)).raft_role));
      return roles.filter((r) => r === "leader").length === 1 ? members[roles.indexOf("leader")] : undefined;
    },
    { what: "one leader", timeoutMs: 20_000 },
  );
  const follower = members.find((m) => m !== leader)!;

  // The backup, through a follower: every write acknowledged before it (21 commands: revision 21).
  const root = scratch("homekv-cluster-backup-");
  const backupDir = `${root}/backup`;
  const backedUp = await on(follower, "backup", backupDir, "--json");
  expect([backedUp.exitCode, backedUp.stderr]).toEqual([0, ""]);
  const backup = JSON.parse(backedUp.stdout);
  expect(backup).toMatchObject({ revision: 21, keys: 19, linkedBytes: 0 });
  expect(readdirSync(backupDir).sort()).toEqual(["ENGINE", "checkpoints", "wal"]);
  for (const member of members) await member.stop("SIGKILL");

  // A member started on the backup itself would found a group empty beside it: refused.
  const [wrongPort] = freePorts(1);
  await expect(
    startServerProcess(
      [
        ...["--node-id", "r1", "--peer-port", String(wrongPort), "--data-dir", backupDir],
        ...["--initial-cluster", `r1=127.0.0.1:${wrongPort}`],
      ],
      ENV,
    ),
  ).rejects.toThrow(/holds a single server's data, which a cluster node would not load: start it as a single server/);
  expect(readdirSync(backupDir).sort()).toEqual(["ENGINE", "checkpoints", "wal"]);

  // Restored as a single server: every key as the cluster had it, the next write at R + 1.
  const single = await serve(["--data-dir", backupDir]);
  expect(JSON.parse((await on(single, "metrics", "--json")).stdout).revision).toBe(21);
  const read = await on(single, "get", ...KEYS);
  expect(read.stdout.trim().split("\n")).toEqual(KEYS.map((k) => (k === "k00" ? "k00  (nil)" : `${k}  "v-${k}"`)));
  expect(JSON.parse((await on(single, "set", "after=restore", "--json")).stdout).revision).toBe(22);
}, 180_000);

import { afterEach, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { freePorts } from "../helpers/free-ports.ts";
import { runHomekv, type ServerProcess, scratchDir, startServerProcess, staticCluster } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A replicated cluster backed up and restored as an operator does it, with real processes and the
 * CLI: `homekv backup` through a follower while the cluster runs; the backup refused as a member's
 * data directory; `homekv restore` founding a new cluster of one from it; a second member added,
 * which is sent the data; and what restore refuses.
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

test("a cluster backed up through a follower is restored as a new cluster of one, which a joiner is sent the data of", async () => {
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
  ).rejects.toThrow(
    /holds a single server's data, which a cluster member would not load: found a cluster from a backup of it with homekv restore/,
  );
  expect(readdirSync(backupDir).sort()).toEqual(["ENGINE", "checkpoints", "wal"]);

  // Restored: a new cluster of one member, r1, at the backup's revision.
  const restored = staticCluster(["r1", "r2"]);
  const r1Dir = `${root}/r1`;
  const [r1Peer, r2Peer] = restored.peerPorts.map((port) => `127.0.0.1:${port}`);
  const restore = await runHomekv([
    "restore",
    backupDir,
    "--data-dir",
    r1Dir,
    "--node-id",
    "r1",
    "--initial-cluster",
    `r1=${r1Peer}`,
  ]);
  expect([restore.exitCode, restore.stderr]).toEqual([0, ""]);
  expect(restore.stdout).toContain(`restored revision 21 (19 keys) from ${backupDir} into ${r1Dir}: member r1`);
  const r1 = await serve([
    ...["--node-id", "r1", "--peer-port", String(restored.peerPorts[0]), "--data-dir", r1Dir],
    ...["--initial-cluster", `r1=${r1Peer}`, "--raft-tick", "50ms"],
  ]);
  expect(r1.output()).toContain("member r1 of a replicated cluster of 1 voters (r1)");
  const view = await waitFor(async () => ((await metrics(r1)).raft_role === "leader" ? metrics(r1) : undefined), {
    what: "r1 to lead its group of one",
    timeoutMs: 20_000,
  });
  expect(view.revision).toBe(21);
  const read = await on(r1, "get", ...KEYS);
  expect(read.stdout.trim().split("\n")).toEqual(KEYS.map((k) => (k === "k00" ? "k00  (nil)" : `${k}  "v-${k}"`)));
  const written = await on(r1, "set", "after=restore", "--json");
  expect(JSON.parse(written.stdout).revision).toBe(22);

  // A second member joins as any does, and is sent the data: the log begins after it.
  const r2 = await serve([
    ...["--node-id", "r2", "--peer-port", String(restored.peerPorts[1]), "--data-dir", scratch("homekv-r2-")],
    ...["--initial-cluster", `r1=${r1Peer},r2=${r2Peer}`, "--initial-cluster-state", "existing", "--raft-tick", "50ms"],
  ]);
  const added = await on(r1, "cluster", "add", `r2=${r2Peer}`);
  expect([added.exitCode, added.stderr]).toEqual([0, ""]);
  await waitFor(
    async () => (await on(r2, "get", "k19", "after", "--serializable")).stdout.includes('after  "restore"'),
    {
      what: "r2 to be sent the restored data and the write after it",
      timeoutMs: 20_000,
    },
  );
  expect((await on(r2, "get", "k00", "k01", "--serializable")).stdout.trim()).toBe('k00  (nil)\nk01  "v-k01"');
  expect((await metrics(r1)).raft_snapshots_sent).toBeGreaterThanOrEqual(1);
}, 180_000);

test("restore refuses what it cannot restore whole, with one line and nothing written", async () => {
  const root = scratch("homekv-restore-refusals-");
  const args = (backup: string, dataDir: string, initialCluster = "r1=127.0.0.1:20011") => [
    "restore",
    backup,
    ...["--data-dir", dataDir, "--node-id", "r1", "--initial-cluster", initialCluster],
  ];
  const refused = async (argv: string[], code: number, message: string) => {
    const result = await runHomekv(argv);
    expect(result.exitCode).toBe(code);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain(message);
  };
  // Not a backup at all.
  mkdirSync(`${root}/empty`);
  await refused(args(`${root}/empty`, `${root}/a`), 1, `${root}/empty is not a backup: it has no ENGINE file`);
  // A single server's data directory (its WAL may hold writes its checkpoint lacks).
  const server = await serve(["--data-dir", `${root}/server`]);
  await on(server, "set", "a=1");
  await server.stop("SIGTERM");
  await refused(args(`${root}/server`, `${root}/a`), 1, `${root}/server is a server's data directory, not a backup`);
  // A cluster of several: one is restored, the others join it.
  await refused(
    args(`${root}/server`, `${root}/a`, "r1=127.0.0.1:20011,r2=127.0.0.1:20012"),
    2,
    "restore founds a cluster of one member, and initial-cluster names 2",
  );
  expect(existsSync(`${root}/a`)).toBe(false);
  // Into a directory that exists.
  const source = await serve(["--data-dir", `${root}/source`]);
  await on(source, "set", "a=1");
  expect((await on(source, "backup", `${root}/backup`)).exitCode).toBe(0);
  mkdirSync(`${root}/taken`);
  await refused(args(`${root}/backup`, `${root}/taken`), 1, `cannot restore into ${root}/taken: it already exists`);
  expect(readdirSync(`${root}/taken`)).toEqual([]);
  expect(readdirSync(root).sort()).toEqual(["backup", "empty", "server", "source", "taken"]);
}, 60_000);

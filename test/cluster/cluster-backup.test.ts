import { afterEach, expect, test } from "bun:test";
import { cpSync, existsSync, mkdirSync, readdirSync } from "node:fs";
import { runHomekv, type ServerProcess, scratchDir, startServerProcess, staticCluster } from "../helpers/processes.ts";
import { rejectionMessage } from "../helpers/rejection.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A replicated cluster backed up and restored as an operator does it, with real processes and the
 * CLI: `homekv backup` through a follower while the cluster runs; the backup refused as a cluster
 * member's data directory (the member would start empty beside it), served as a single server,
 * and restored by `homekv restore` as a new cluster under a new cluster id, which refuses a member
 * of the old cluster on its old data and a second founding, and which two members join; and what
 * restore refuses.
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

test("a cluster backed up through a follower, served as a single server, and restored as a new cluster of one under a new id: an old member's data and a second founding refused, two members added and sent the restored data", async () => {
  const names = ["n1", "n2", "n3"];
  const cluster = staticCluster(names);
  const members: ServerProcess[] = [];
  const dirs: string[] = [];
  for (const name of names) {
    dirs.push(scratch(`homekv-${name}-`));
    members.push(await serve([...cluster.memberArgs(name), "--data-dir", dirs.at(-1)!]));
  }
  // Revision 1 sets 20 keys, revision 2 deletes one; through whichever member takes them (any does
  // once a leader is known).
  const write = (...args: string[]) =>
    waitFor(
      async () => {
        for (const member of members) if ((await on(member, ...args)).exitCode === 0) return true;
        return false;
      },
      { what: `a member to take ${args.join(" ")}`, timeoutMs: 20_000, intervalMs: 50 },
    );
  await write("set", ...KEYS.map((key) => `${key}=v-${key}`));
  await write("del", "k00");
  const leader = await waitFor(
    async () => {
      const roles = await Promise.all(members.map(async (m) => (await metrics(m)).raft_role));
      return roles.filter((r) => r === "leader").length === 1 ? members[roles.indexOf("leader")] : undefined;
    },
    { what: "one leader", timeoutMs: 20_000 },
  );
  const follower = members.find((m) => m !== leader)!;

  // The backup, through a follower: every write acknowledged before it.
  const root = scratch("homekv-cluster-backup-");
  const backupDir = `${root}/backup`;
  const backedUp = await on(follower, "backup", backupDir, "--json");
  expect([backedUp.exitCode, backedUp.stderr]).toEqual([0, ""]);
  expect(JSON.parse(backedUp.stdout)).toMatchObject({ revision: 2, keys: 19, linkedBytes: 0 });
  expect(readdirSync(backupDir).sort()).toEqual(["ENGINE", "checkpoints", "wal"]);
  // One more write in the old cluster, after the backup: the old members have it, the backup not.
  await write("set", "late=old-history");
  for (const member of members)
    await waitFor(async () => (await metrics(member)).revision === 3, { what: "every old member to apply it" });
  for (const member of members) await member.stop("SIGTERM");

  // A cluster member started on the backup itself would found a group empty beside it: refused.
  const [p1, p2, p3] = cluster.peerPorts.map((port) => `127.0.0.1:${port}`);
  const n1Args = ["--peer-port", String(cluster.peerPorts[0]), "--raft-tick", "50ms"];
  expect(
    await rejectionMessage(
      startServerProcess(["--node-id", "n1", "--initial-cluster", `n1=${p1}`, "--data-dir", backupDir, ...n1Args], ENV),
    ),
  ).toMatch(/holds a single server's data \(its WAL, checkpoints or FLSM tables\), which this server would not load/);
  expect(readdirSync(backupDir).sort()).toEqual(["ENGINE", "checkpoints", "wal"]);

  // Served as a single server (a copy: a server writes into its data directory).
  cpSync(backupDir, `${root}/single`, { recursive: true });
  const single = await serve(["--data-dir", `${root}/single`]);
  expect((await metrics(single)).revision).toBe(2);
  const read = await on(single, "get", ...KEYS);
  expect(read.stdout.trim().split("\n")).toEqual(KEYS.map((k) => (k === "k00" ? "k00  (nil)" : `${k}  "v-${k}"`)));
  expect(JSON.parse((await on(single, "set", "after=restore", "--json")).stdout).revision).toBe(3);
  await single.stop("SIGTERM");

  // Restored as a new cluster of one, n1, at the backup's revision.
  const n1Dir = `${root}/n1-restored`;
  const restore = await runHomekv([
    "restore",
    backupDir,
    "--data-dir",
    n1Dir,
    "--node-id",
    "n1",
    "--initial-cluster",
    `n1=${p1}`,
    "--json",
  ]);
  expect([restore.exitCode, restore.stderr]).toEqual([0, ""]);
  const restored = JSON.parse(restore.stdout);
  expect(restored).toMatchObject({ revision: 2, keys: 19, dataDir: n1Dir, member: "n1" });
  const id: string = restored.clusterId;
  expect(id).toMatch(/^homekv\.restored-\d{13}$/);
  expect(restored.serve).toBe(
    `homekv serve --node-id n1 --cluster-id ${id} --data-dir ${n1Dir} --host 127.0.0.1 --peer-port ${cluster.peerPorts[0]} --initial-cluster n1=${p1}`,
  );
  // Under another name or cluster id it would wait without a word, or let the old members in;
  // as a single server it would serve nothing of it: refused.
  const withId = [...n1Args, "--cluster-id", id];
  for (const [args, refusal] of [
    [["--node-id", "n9", "--initial-cluster", `n9=${p1}`, ...withId], `was restored as member n1 of cluster ${id}`],
    [["--node-id", "n1", "--initial-cluster", `n1=${p1}`, ...n1Args], `start it with --node-id n1 --cluster-id ${id}`],
    [[], "holds a replicated cluster member's data (its Raft log and checkpoints), which this server would not load"],
  ] as const)
    expect(await rejectionMessage(startServerProcess([...args, "--data-dir", n1Dir], ENV))).toMatch(refusal);
  const n1 = await serve(["--node-id", "n1", "--initial-cluster", `n1=${p1}`, "--data-dir", n1Dir, ...withId]);
  await waitFor(async () => (await metrics(n1)).raft_role === "leader", {
    what: "n1 to lead its group of one",
    timeoutMs: 20_000,
  });
  expect((await metrics(n1)).revision).toBe(2);
  expect((await on(n1, "get", "late")).stdout.trim()).toBe("late  (nil)");
  expect(JSON.parse((await on(n1, "set", "after=restore", "--json")).stdout).revision).toBe(3);

  // Under the new id, n2's old data directory (a log of the old history) is refused, and so is
  // n3 founding a group of its own: each joins on an empty directory, is added, and is sent the
  // restored data. (The old id is refused by every member's handshake.)
  const joinerArgs = (name: "n2" | "n3", dir: string) => [
    ...["--node-id", name, "--peer-port", String(cluster.peerPorts[name === "n2" ? 1 : 2]), "--data-dir", dir],
    ...["--initial-cluster", `n1=${p1},${name}=${name === "n2" ? p2 : p3}`, "--raft-tick", "50ms", "--cluster-id", id],
  ];
  expect(
    await rejectionMessage(
      startServerProcess([...joinerArgs("n2", dirs[1]!), "--initial-cluster-state", "existing"], ENV),
    ),
  ).toMatch(`data directory ${dirs[1]} holds the Raft log of another cluster`);
  const n3Dir = scratch("homekv-n3-new-");
  expect(await rejectionMessage(startServerProcess(joinerArgs("n3", n3Dir), ENV))).toMatch(
    `cluster ${id} was restored from a backup (homekv restore) and exists already`,
  );
  // Refused before anything was written: the directory is as it was, and joins as any empty one.
  expect(readdirSync(n3Dir)).toEqual([]);
  // Gossip founding or partitions under a restored id: a usage error.
  for (const flags of [
    ["--gossip-port", "0", "--bootstrap-expect", "3"],
    ["--partitions", "4", "--initial-cluster", "n4=127.0.0.1:20999"],
  ]) {
    const refused = await runHomekv(["serve", "--node-id", "n4", "--peer-port", "0", "--cluster-id", id, ...flags]);
    expect(refused.exitCode).toBe(2);
    expect(refused.stderr).toContain("is one Raft group that grows by homekv cluster add");
  }
  const n2 = await serve([...joinerArgs("n2", scratch("homekv-n2-new-")), "--initial-cluster-state", "existing"]);
  const n3 = await serve([...joinerArgs("n3", n3Dir), "--initial-cluster-state", "existing"]);
  for (const [name, peer] of [
    ["n2", p2],
    ["n3", p3],
  ] as const) {
    const added = await on(n1, "cluster", "add", `${name}=${peer}`);
    expect([added.exitCode, added.stderr]).toEqual([0, ""]);
  }
  const held = async (server: ServerProcess) =>
    (await on(server, "get", "after", "late", "k01", "--serializable")).stdout.trim().replace(/ +/g, " ");
  const wanted = 'after "restore"\nlate (nil)\nk01 "v-k01"';
  for (const [name, server] of [
    ["n2", n2],
    ["n3", n3],
  ] as const)
    await waitFor(async () => (await held(server)) === wanted, {
      what: `${name} to hold the restored data`,
      timeoutMs: 30_000,
      detail: () => held(server),
    });
  for (const server of [n2, n3]) expect(server.output()).toContain("installed the leader's snapshot");
  // n1 still leads, at the restored history's revision.
  const view = await metrics(n1);
  expect([view.raft_role, view.revision]).toEqual(["leader", 3]);
}, 240_000);

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

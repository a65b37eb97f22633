import { afterAll, expect, test } from "bun:test";
import { runHomekv, type ServerProcess, scratchDir, startServerProcess, staticCluster } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * `homekv ring` against three real `homekv serve --partitions 8 --replicas 2` processes on loopback
 * ports: every node shows the same placement, and the leaders of the partitions it holds.
 */
const PARTITIONS = 8;
const NAMES = ["n1", "n2", "n3"];
const cleanups: (() => unknown)[] = [];
afterAll(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** `homekv ring --json` as the CLI prints it. */
interface RingJson {
  cluster_id: string;
  node_id: string;
  replication: number;
  partitions: { partition: number; replicas: string[]; local: boolean; leader: string }[];
  shares: { node_id: string; replicas: number; preferred_leaders: number }[];
}

async function startCluster(): Promise<ServerProcess[]> {
  const cluster = staticCluster(NAMES);
  const servers: ServerProcess[] = [];
  for (const name of NAMES) {
    const dir = scratchDir(`homekv-${name}-`);
    cleanups.push(dir.cleanup);
    const server = await startServerProcess([
      ...cluster.memberArgs(name),
      ...["--data-dir", dir.path, "--partitions", String(PARTITIONS), "--replicas", "2"],
    ]);
    cleanups.push(() => server.stop("SIGKILL"));
    servers.push(server);
  }
  return servers;
}

/** `homekv ring` through `server` with `args`, retried until it answers (the placement is made at founding). */
function ring(server: ServerProcess, args: string[] = []) {
  return waitFor(
    async () => {
      const result = await runHomekv(["ring", ...args, "-p", String(server.port)]);
      return result.exitCode === 0 && result.stdout;
    },
    { what: `homekv ring through ${server.address} to answer`, timeoutMs: 30_000, intervalMs: 100 },
  );
}

test("homekv ring shows 8 partitions of 2 replicas each, their leaders and the shares, from any node", async () => {
  const servers = await startCluster();
  // Each node starts its replicas once it learns the placement (opening each from its checkpoints):
  // asked meanwhile, it shows them placed, not yet local.
  const views = await waitFor(
    async () => {
      const all: RingJson[] = [];
      for (const server of servers) all.push(JSON.parse(await ring(server, ["--json"])) as RingJson);
      const started = all.every((view) => view.partitions.every((p) => p.local === p.replicas.includes(view.node_id)));
      return started && all;
    },
    { what: "every node to run the replicas placed on it", timeoutMs: 30_000, intervalMs: 100 },
  );
  const [first] = views as [RingJson];
  expect(views.map((view) => view.node_id)).toEqual(NAMES);
  expect(first.replication).toBe(2);
  expect(first.partitions.map((p) => p.partition)).toEqual([...Array(PARTITIONS).keys()]);
  for (const { replicas } of first.partitions) {
    expect(new Set(replicas).size).toBe(2);
    for (const name of replicas) expect(NAMES).toContain(name);
  }
  expect(first.shares.map((s) => s.node_id)).toEqual(NAMES);
  expect(first.shares.reduce((sum, s) => sum + s.replicas, 0)).toBe(PARTITIONS * 2);
  expect(first.shares.reduce((sum, s) => sum + s.preferred_leaders, 0)).toBe(PARTITIONS);
  // One placement, whichever node is asked; each knows the leaders of the partitions it holds, and only those.
  for (const view of views) {
    expect(view.partitions.map((p) => p.replicas)).toEqual(first.partitions.map((p) => p.replicas));
    expect(view.shares).toEqual(first.shares);
    for (const p of view.partitions.filter((p) => !p.local)) expect(p.leader).toBe("");
  }

  // Every partition elects a leader among its replicas, and the nodes holding it say which.
  const leaders = await waitFor(
    async () => {
      const seen = new Map<number, string>();
      for (const server of servers) {
        const view = JSON.parse(await ring(server, ["--json"])) as RingJson;
        for (const p of view.partitions) if (p.local && p.replicas.includes(p.leader)) seen.set(p.partition, p.leader);
      }
      return seen.size === PARTITIONS && seen;
    },
    { what: "every partition to have a leader among its replicas", timeoutMs: 30_000, intervalMs: 100 },
  );
  expect([...leaders.keys()].sort()).toEqual([...Array(PARTITIONS).keys()]);

  const text = await ring(servers[0] as ServerProcess);
  const lines = text.split("\n");
  for (const p of first.partitions) {
    expect(lines.filter((line) => new RegExp(`^${p.partition} +${p.replicas.join(",")} `).test(line))).toHaveLength(1);
  }
  for (const s of first.shares)
    expect(text).toMatch(new RegExp(`^${s.node_id} +${s.replicas} +${s.preferred_leaders}$`, "m"));
}, 120_000);

import { afterEach, expect, test } from "bun:test";
import { HomeKvClient } from "../../../src/client/client.ts";
import { text } from "../../helpers/bytes.ts";
import { freePorts } from "../../helpers/free-ports.ts";
import { type ServerProcess, scratchDir, startServerProcess } from "../../helpers/processes.ts";
import { waitFor } from "../../helpers/wait.ts";

/**
 * Restarts in a partitioned cluster founded through gossip (`--bootstrap-expect 3 --partitions 8`),
 * real `homekv serve` processes on loopback ports, each on a data directory the test keeps across
 * restarts: past its first start a node's meta log has a term, and findGroup gives it no seeds and
 * "existing" — what it knows of its peers and of the founding must come from its log.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const NAMES = ["n1", "n2", "n3", "n4"];
const FOUNDERS = NAMES.slice(0, 3);

function gossipCluster() {
  const gossipPorts = freePorts(NAMES.length);
  const peerPorts = freePorts(NAMES.length);
  const dirs = NAMES.map(() => scratchDir("homekv-review19e-"));
  cleanups.push(() => {
    for (const dir of dirs) dir.cleanup();
  });
  const join = gossipPorts
    .slice(0, FOUNDERS.length)
    .map((port) => `127.0.0.1:${port}`)
    .join(",");
  return async (name: string, raftTick = "50ms"): Promise<{ server: ServerProcess; client: HomeKvClient }> => {
    const i = NAMES.indexOf(name);
    const server = await startServerProcess(
      [
        ...["--node-id", name, "--data-dir", dirs[i]!.path],
        ...["--peer-port", String(peerPorts[i]), "--gossip-port", String(gossipPorts[i])],
        ...["--join", join, "--bootstrap-expect", "3", "--partitions", "8", "--replicas", "3"],
        ...["--gossip-interval", "100ms", "--raft-tick", raftTick],
      ],
      { env: { HOMEKV_CLUSTER_TOKEN: "test-token" }, startTimeoutMs: 30_000 },
    );
    const client = new HomeKvClient({ address: server.address, timeoutMs: 5_000 });
    cleanups.push(
      () => server.stop("SIGKILL"),
      () => client.close(),
    );
    return { server, client };
  };
}

const tookSet = (client: HomeKvClient, what: string) =>
  waitFor(() => client.set([["user/1", "ann"]]).catch(() => undefined), { what, timeoutMs: 30_000 });

test("a founder restarted after the gossip-founded cluster formed finds its peers from its meta log and serves", async () => {
  const start = gossipCluster();
  const [n1] = await Promise.all(FOUNDERS.map((name) => start(name)));
  await tookSet(n1!.client, "the founded cluster to take a Set");
  await n1!.server.stop("SIGKILL");
  const again = await start("n1");
  await waitFor(
    async () => {
      const found = await again.client.get(["user/1"]).catch(() => undefined);
      return found?.records[0]?.value !== undefined && text(found.records[0].value) === "ann";
    },
    { what: "n1, restarted, to read user/1", timeoutMs: 30_000, detail: () => again.server.output() },
  );
}, 120_000);

test("founders all stopped before the cluster formed (their meta logs founded, no election yet) found it once restarted", async () => {
  const start = gossipCluster();
  // Raft ticks of 3 s: gossip settles the founders and each founds its meta log at once, and no
  // election can start for 30 s — the servers stop (a power cut, an operator's Ctrl-C) before.
  const first = await Promise.all(FOUNDERS.map((name) => start(name, "3s")));
  for (const { server } of first) {
    expect(server.output()).toContain("member n");
    await server.stop("SIGKILL");
  }
  const [n1] = await Promise.all(FOUNDERS.map((name) => start(name)));
  await waitFor(() => n1!.client.set([["user/1", "ann"]]).catch(() => undefined), {
    what: "the cluster, its founders restarted, to take a Set",
    timeoutMs: 30_000,
    detail: () => n1!.server.output(),
  });
}, 120_000);

test("a node that joined through gossip, restarted, is a member still: it serves and runs its share of the replicas", async () => {
  const start = gossipCluster();
  const founders = await Promise.all(FOUNDERS.map((name) => start(name)));
  await tookSet(founders[0]!.client, "the founded cluster to take a Set");
  const shares = async (client: HomeKvClient) =>
    (await client.ring().catch(() => undefined))?.shares.map((share) => [share.nodeId, share.replicas]);
  const settled = [
    ["n1", 6],
    ["n2", 6],
    ["n3", 6],
    ["n4", 6],
  ];
  const n4 = await start("n4");
  await waitFor(async () => JSON.stringify(await shares(n4.client)) === JSON.stringify(settled), {
    what: "n4 to join and take its share",
    timeoutMs: 60_000,
  });
  await n4.server.stop("SIGKILL");
  const again = await start("n4");
  await waitFor(
    async () => {
      const ring = await again.client.ring().catch(() => undefined);
      const local = ring?.partitions.filter((p) => p.local && p.leader !== "").length;
      const found = await again.client.get(["user/1"]).catch(() => undefined);
      return local === 6 && found?.records[0]?.value !== undefined;
    },
    { what: "n4, restarted, to serve with its six replicas", timeoutMs: 30_000, detail: () => again.server.output() },
  );
  expect(again.server.output()).toContain("member n4 of a partitioned cluster");
}, 180_000);

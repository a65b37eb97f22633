import { afterAll, expect, test } from "bun:test";
import { HomeKvClient } from "../../src/client/client.ts";
import { type Member, Member_Status } from "../../src/gen/homekv_service.ts";
import { parseExposition } from "../discovery/parse-exposition.ts";
import { runHomekv, type ServerProcess, startServerProcess } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * Five real `homekv serve` processes gossiping over loopback UDP at the default interval (500 ms)
 * and phi threshold (8): they find each other through one seed, see a SIGKILLed node dead, see it
 * alive again after a restart, and see a SIGTERMed node leave at once.
 */
const nodes = new Map<string, ServerProcess>();
const clients = new Map<string, HomeKvClient>();

afterAll(async () => {
  for (const client of clients.values()) client.close();
  await Promise.all([...nodes.values()].map((node) => node.stop("SIGKILL")));
});

async function startNode(id: string, extra: string[] = []): Promise<ServerProcess> {
  const node = await startServerProcess([
    "--in-memory",
    "--node-id",
    id,
    "--cluster-id",
    "test-cluster",
    "--gossip-port",
    "0",
    ...extra,
  ]);
  nodes.set(id, node);
  clients.get(id)?.close();
  clients.set(id, new HomeKvClient({ address: node.address, timeoutMs: 2_000 }));
  return node;
}

function gossipAddress(node: ServerProcess): string {
  const match = /gossip on (127\.0\.0\.1:\d+)/.exec(node.output());
  if (!match) throw new Error(`no gossip address in:\n${node.output()}`);
  return match[1]!;
}

async function view(observer: string): Promise<Map<string, Member>> {
  const { members } = await clients.get(observer)!.members();
  return new Map(members.map((member) => [member.nodeId, member]));
}

/** Polls until `check` holds for every observer's view; returns how long that took. */
async function waitUntil(
  observers: string[],
  check: (members: Map<string, Member>) => boolean,
  timeoutMs: number,
  what: string,
): Promise<number> {
  const started = performance.now();
  let views: Map<string, Member>[] = [];
  await waitFor(async () => (views = await Promise.all(observers.map(view))).every(check), {
    what,
    timeoutMs,
    intervalMs: 100,
    detail: () =>
      views
        .map(
          (members, i) =>
            `${observers[i]}: ${[...members.values()].map((m) => `${m.nodeId}=${Member_Status[m.status]}(phi ${m.phi.toFixed(1)})`).join(" ")}`,
        )
        .join("\n"),
  });
  return performance.now() - started;
}

const ids = ["n1", "n2", "n3", "n4", "n5"];
const statusOf = (members: Map<string, Member>, id: string) => members.get(id)?.status;

test("five nodes join through one seed, see a killed node dead, a restarted one alive, a stopped one left", async () => {
  const seed = await startNode("n1", ["--http-port", "0"]);
  const join = ["--join", gossipAddress(seed)];
  await Promise.all(ids.slice(1).map((id) => startNode(id, join)));

  const joinedMs = await waitUntil(
    ids,
    (members) => ids.every((id) => statusOf(members, id) === Member_Status.ALIVE),
    15_000,
    "all five alive everywhere",
  );
  console.log(`5 nodes: every view complete ${joinedMs.toFixed(0)} ms after the last start`);
  // The CLI shows the same, as a table.
  const table = await runHomekv(["members", "-p", String(nodes.get("n2")!.port)]);
  expect(table.exitCode).toBe(0);
  for (const id of ids) expect(table.stdout).toMatch(new RegExp(`^${id}( \\*)?\\s+alive\\s`, "m"));

  // Prometheus sees the same view, and the gossip traffic.
  const httpBase = /HTTP endpoint on (http:\/\/127\.0\.0\.1:\d+)/.exec(seed.output())![1]!;
  const scraped = parseExposition(await (await fetch(`${httpBase}/metrics`)).text());
  expect(scraped.value("homekv_cluster_members", { status: "alive" })).toBe(5);
  expect(scraped.value("homekv_gossip_datagrams_total", { direction: "received" })).toBeGreaterThan(0);

  // SIGKILL: no goodbye; the others must notice through phi alone, within 5 s at the defaults.
  const killed = nodes.get("n3")!;
  const oldGeneration = (await view("n1")).get("n3")!.generation;
  const killedGossip = gossipAddress(killed);
  await killed.stop("SIGKILL");
  nodes.delete("n3");
  const survivors = ids.filter((id) => id !== "n3");
  const deadMs = await waitUntil(
    survivors,
    (members) => statusOf(members, "n3") === Member_Status.DEAD,
    5_000,
    "n3 dead everywhere",
  );
  console.log(`SIGKILLed node marked dead everywhere after ${deadMs.toFixed(0)} ms`);

  // Restarted on its old gossip port: alive again everywhere, with a higher generation.
  await startNode("n3", [...join, "--gossip-port", killedGossip.split(":")[1]!]);
  await waitUntil(
    ids,
    (members) => statusOf(members, "n3") === Member_Status.ALIVE && members.get("n3")!.generation > oldGeneration,
    10_000,
    "n3 alive again with a new generation",
  );

  // SIGTERM: the node says it leaves, and the others show it at once.
  const leaving = nodes.get("n4")!;
  expect(await leaving.stop("SIGTERM")).toBe(0);
  nodes.delete("n4");
  const remaining = ids.filter((id) => id !== "n4");
  const leftMs = await waitUntil(
    remaining,
    (members) => statusOf(members, "n4") === Member_Status.LEFT,
    1_000,
    "n4 left everywhere",
  );
  console.log(`SIGTERMed node shown as left everywhere after ${leftMs.toFixed(0)} ms`);
}, 60_000);

test("a server without --gossip-port is a cluster of one; --join without it is a usage error", async () => {
  const alone = await startServerProcess(["--in-memory", "--node-id", "solo"]);
  try {
    const client = new HomeKvClient({ address: alone.address });
    const { clusterId, members } = await client.members();
    client.close();
    expect(clusterId).toBe("homekv");
    expect(members.map((m) => [m.nodeId, m.status, m.isSelf, m.grpcAddress])).toEqual([
      ["solo", Member_Status.ALIVE, true, alone.address],
    ]);
  } finally {
    await alone.stop();
  }
  const usage = await runHomekv(["serve", "--in-memory", "--join", "127.0.0.1:1"]);
  expect(usage.exitCode).toBe(2);
  expect(usage.stderr).toContain("join needs gossip-port");
  const badId = await runHomekv(["serve", "--in-memory", "--node-id", "no spaces"]);
  expect(badId.exitCode).toBe(2);
  expect(badId.stderr).toContain("node-id must be 1 to 64 letters");
});

import { afterEach, expect, test } from "bun:test";
import { HomeKvClient } from "../../src/client/client.ts";
import { partitionOf } from "../../src/cluster/ring/partition-of.ts";
import { text } from "../helpers/bytes.ts";
import { type ServerProcess, scratchDir, startServerProcess, staticCluster } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * `homekv serve --partitions 8 --replicas 3` as three real processes on loopback ports: the meta
 * group founds the cluster and places the partitions, each node starts its replicas, and every node
 * takes Get, Set and Del of keys of any partition; one node SIGKILLed and started again on its
 * data directory.
 */
const PARTITIONS = 8;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Node {
  name: string;
  dir: string;
  server: ServerProcess;
  client: HomeKvClient;
}

async function startCluster() {
  const names = ["n1", "n2", "n3"];
  const cluster = staticCluster(names);
  const start = async (name: string, dir: string): Promise<Node> => {
    const server = await startServerProcess([
      ...cluster.memberArgs(name),
      ...["--data-dir", dir, "--partitions", String(PARTITIONS), "--replicas", "3"],
    ]);
    const client = new HomeKvClient({ address: server.address, timeoutMs: 10_000 });
    cleanups.push(
      () => server.stop("SIGKILL"),
      () => client.close(),
    );
    return { name, dir, server, client };
  };
  const nodes: Node[] = [];
  for (const name of names) {
    const dir = scratchDir(`homekv-${name}-`);
    cleanups.push(dir.cleanup);
    nodes.push(await start(name, dir.path));
  }
  return { nodes, start };
}

/** Keys that fall in every partition, several in each. */
const keys = Array.from({ length: 40 }, (_, i) => `user/${i}`);

/** A multi-key Set through `node`, retried while the cluster elects its leaders. */
function setWhenReady(node: Node, pairs: (readonly [string, string])[]) {
  return waitFor(
    async () => {
      try {
        return await node.client.set(pairs);
      } catch {
        return undefined;
      }
    },
    { what: `${node.name} to take a Set across partitions`, timeoutMs: 30_000, intervalMs: 100 },
  );
}

test("every node takes Get, Set and Del of any key; a multi-key Set is atomic across partitions and survives a SIGKILL", async () => {
  const partitions = new Set(keys.map((key) => partitionOf(new TextEncoder().encode(key), PARTITIONS)));
  expect(partitions.size).toBe(PARTITIONS);
  const { nodes, start } = await startCluster();
  const [n1, n2, n3] = nodes as [Node, Node, Node];

  const first = await setWhenReady(
    n1,
    keys.map((key) => [key, `v1-${key}`] as const),
  );
  for (const node of nodes) {
    const { records, revision } = await node.client.get(keys);
    expect(records.map((r) => text(r.value))).toEqual(keys.map((key) => `v1-${key}`));
    // One commit, one timestamp, in every partition: the records say when, across the RPCs too.
    expect(new Set(records.map((r) => [r.modRevision, r.createRevision, r.version].join()))).toEqual(
      new Set([[first.revision, first.revision, 1].join()]),
    );
    expect(revision).toBeGreaterThanOrEqual(first.revision);
  }

  // A Del through another node says how many existed; a read at the first Set's revision still sees them.
  const gone = keys.slice(0, 10);
  const del = await n3.client.del(gone);
  expect(del.deleted).toBe(10);
  expect(del.revision).toBeGreaterThan(first.revision);
  expect((await n2.client.get(gone)).records.every((r) => r.value === undefined)).toBe(true);
  expect((await n2.client.get(gone, { revision: first.revision })).records.map((r) => text(r.value))).toEqual(
    gone.map((key) => `v1-${key}`),
  );
  expect((await n1.client.del(gone)).deleted).toBe(0);

  // What is not built yet across partitions says so.
  const refused = await n1.client.scanPage({ prefix: "user/" }).then(
    () => undefined,
    (error: unknown) => error,
  );
  expect(String(refused)).toMatch(/UNIMPLEMENTED.*Scan across partitions/);

  // n1 killed: the others elect leaders for its partitions and go on; restarted, it serves them all again.
  await n1.server.stop("SIGKILL");
  const second = await setWhenReady(
    n2,
    keys.map((key) => [key, `v2-${key}`] as const),
  );
  const afterKill = await n3.client.get(keys);
  expect(afterKill.records.map((r) => text(r.value))).toEqual(keys.map((key) => `v2-${key}`));
  // Deleted then written again: created anew. The others: their second version.
  expect(afterKill.records.map((r) => [r.createRevision, r.version])).toEqual(
    keys.map((key) => (gone.includes(key) ? [second.revision, 1] : [first.revision, 2])),
  );
  const again = await start("n1", n1.dir);
  const { records, revision } = await waitFor(
    async () => {
      try {
        return await again.client.get(keys);
      } catch {
        return undefined;
      }
    },
    { what: "the restarted n1 to answer a Get", timeoutMs: 30_000, intervalMs: 100 },
  );
  expect(records.map((r) => text(r.value))).toEqual(keys.map((key) => `v2-${key}`));
  expect(revision).toBeGreaterThan(second.revision);
}, 120_000);

import { expect, test } from "bun:test";
import { status as Status } from "@grpc/grpc-js";
import { HomeKvClient } from "../../src/client/client.ts";
import { partitionOf } from "../../src/cluster/ring/partition-of.ts";
import { Compare_Op, Compare_Target } from "../../src/gen/homekv_service.ts";
import { mulberry32 } from "../../src/random.ts";
import { text } from "../helpers/bytes.ts";
import { type PartitionedNode, partitionedClusters, setWhenReady } from "../helpers/partitioned-cluster.ts";
import { runHomekv, type ServerProcess, scratchDir, startServerProcess, staticCluster } from "../helpers/processes.ts";
import { rejection } from "../helpers/rejection.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * `homekv serve --partitions 8 --replicas 3` as three real processes on loopback ports: the meta
 * group founds the cluster and places the partitions, each node starts its replicas, and every node
 * takes Get, Set and Del of keys of any partition; one node SIGKILLed and started again on its
 * data directory.
 */
const PARTITIONS = 8;
const clusters = partitionedClusters();

async function startCluster() {
  const { start, startAll } = clusters();
  return { nodes: await startAll(), start: (name: string) => start(name) };
}

type Node = PartitionedNode;

/** Keys that fall in every partition, several in each. */
const keys = Array.from({ length: 40 }, (_, i) => `user/${i}`);

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

  // A scan pages every partition's keys in key order, all pages at the first page's revision, even
  // while writes go on; reverse too.
  const sorted = [...keys].sort();
  const left = sorted.filter((key) => !gone.includes(key));
  const firstPage = await n1.client.scanPage({ prefix: "user/", limit: 7 });
  const during = await n2.client.set([["user/0", "written during the scan"]]);
  const scanned = [...firstPage.records];
  let page = firstPage;
  while (page.continuation !== "") {
    page = await n1.client.scanPage({ continuation: page.continuation, limit: 7 });
    expect(page.revision).toBe(firstPage.revision);
    scanned.push(...page.records);
  }
  expect(scanned.map((r) => r.key)).toEqual(left);
  expect(scanned.map((r) => text(r.value))).toEqual(left.map((key) => `v1-${key}`));
  const live = ["user/0", ...left].sort();
  const reversed: string[] = [];
  for await (const record of n3.client.scan({ prefix: "user/", reverse: true, limit: 6 })) reversed.push(record.key);
  expect(reversed).toEqual([...live].reverse());
  expect(
    (await n3.client.scanPage({ start: "user/2", end: "user/3", keysOnly: true })).records.map((r) => r.key),
  ).toEqual(live.filter((key) => key >= "user/2" && key < "user/3"));

  // A watch of the prefix through n3 sees a multi-key Set through n1 as one revision, all its keys.
  const from = (await n1.client.get(["user/1"])).revision + 1;
  const watched = await n1.client.set([
    ["user/1", "watched"],
    ["user/2", "watched"],
  ]);
  const abort = new AbortController();
  const events = n3.client.watch({ prefix: "user/", startRevision: from }, abort.signal);
  const seen = [(await events.next()).value!, (await events.next()).value!];
  abort.abort();
  expect(seen.map((e) => [e.key, e.revision])).toEqual([
    ["user/1", watched.revision],
    ["user/2", watched.revision],
  ]);

  // n1 killed: the others elect leaders for its partitions and go on; restarted, it serves them all again.
  await n1.server.stop("SIGKILL");
  const second = await setWhenReady(
    n2,
    keys.map((key) => [key, `v2-${key}`] as const),
  );
  const afterKill = await n3.client.get(keys);
  expect(afterKill.records.map((r) => text(r.value))).toEqual(keys.map((key) => `v2-${key}`));
  // Deleted then written again: created anew (user/0 during the scan, user/1 and 2 watched). The others: their second version.
  const createdAt = new Map([
    ["user/0", during.revision],
    ["user/1", watched.revision],
    ["user/2", watched.revision],
  ]);
  const created = (key: string) =>
    createdAt.has(key) ? [createdAt.get(key)!, 2] : gone.includes(key) ? [second.revision, 1] : [first.revision, 2];
  expect(afterKill.records.map((r) => [r.createRevision, r.version])).toEqual(keys.map(created));
  const again = await start("n1");
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

/**
 * Jepsen's bank over real processes: accounts on different partitions, transfers by Txn from a
 * client on every node (each compares both balances by mod revision, so a transfer computed from a
 * stale read never lands), readers on every node summing all accounts in one Get. Bounded by count.
 */
test("the bank: concurrent transfers by Txn across partitions from every node; every multi-key Get sums to the total", async () => {
  const { nodes } = await startCluster();
  const accounts = Array.from({ length: 8 }, (_, i) => `bank/${i}`);
  const TOTAL = accounts.length * 100;
  await setWhenReady(
    nodes[0]!,
    accounts.map((key) => [key, "100"] as const),
  );
  const encode = (n: number) => new TextEncoder().encode(String(n));
  const balance = (record: { value: Uint8Array | undefined }) => Number(text(record.value));
  const random = mulberry32(7);
  const counts = { transfers: 0, refused: 0, reads: 0 };
  const transfers = nodes.map(async (node) => {
    for (let i = 0; i < 25; i++) {
      const from = accounts[Math.floor(random() * accounts.length)]!;
      const to = accounts.filter((key) => key !== from)[Math.floor(random() * (accounts.length - 1))]!;
      const { records } = await node.client.get([from, to]);
      const amount = Math.min(balance(records[0]!), 1 + Math.floor(random() * 20));
      const unchanged = records.map((record) => ({
        key: record.key,
        target: Compare_Target.MOD_REVISION,
        op: Compare_Op.EQUAL,
        number: record.modRevision,
      }));
      const result = await node.client.txn({
        compares: unchanged,
        success: [
          { op: { $case: "put", put: { key: from, value: encode(balance(records[0]!) - amount) } } },
          { op: { $case: "put", put: { key: to, value: encode(balance(records[1]!) + amount) } } },
        ],
        failure: [],
      });
      if (result.succeeded) counts.transfers++;
      else counts.refused++;
    }
  });
  const readers = nodes.map(async (node) => {
    for (let i = 0; i < 25; i++) {
      const { records } = await node.client.get(accounts);
      expect(records.reduce((sum, record) => sum + balance(record), 0)).toBe(TOTAL);
      counts.reads++;
    }
  });
  // A backup through one node while the transfers run: every account at one timestamp, the
  // transfers in flight resolved as a read's locks are, so its accounts sum to the total too.
  const backupRoot = scratchDir("homekv-bank-backup-");
  const backupDir = `${backupRoot.path}/bank`;
  const backup = (async () => {
    await waitFor(() => counts.transfers >= 5, { what: "five transfers before the backup", timeoutMs: 60_000 });
    return nodes[1]!.client.backup(backupDir);
  })();
  await Promise.all([...transfers, ...readers, backup]);
  console.log(`bank over 3 processes: ${JSON.stringify(counts)}`);
  expect(counts.transfers).toBeGreaterThan(10);
  const { records } = await nodes[2]!.client.get(accounts);
  expect(records.reduce((sum, record) => sum + balance(record), 0)).toBe(TOTAL);
  const { revision } = await backup;
  const atBackup = (await nodes[0]!.client.get(accounts, { revision })).records.map(balance);
  expect(atBackup.reduce((sum, account) => sum + account, 0)).toBe(TOTAL);
  // Founding a replicated cluster on it (`homekv restore`; before a single server writes into it):
  // the accounts as at the backup, no history below it, the next write after it.
  const r1 = staticCluster(["r1"]);
  const r1Dir = `${backupRoot.path}/r1`;
  const restore = await runHomekv([
    ...["restore", backupDir, "--data-dir", r1Dir, "--node-id", "r1"],
    ...["--initial-cluster", `r1=127.0.0.1:${r1.peerPorts[0]}`, "--json"],
  ]);
  expect([restore.exitCode, restore.stderr]).toEqual([0, ""]);
  const { clusterId } = JSON.parse(restore.stdout);
  const servers: ServerProcess[] = [];
  const clients: HomeKvClient[] = [];
  try {
    servers.push(await startServerProcess([...r1.memberArgs("r1"), "--cluster-id", clusterId, "--data-dir", r1Dir]));
    // And served as a single server as it is.
    servers.push(await startServerProcess(["--data-dir", backupDir]));
    for (const server of servers) clients.push(new HomeKvClient({ address: server.address, timeoutMs: 10_000 }));
    for (const client of clients) {
      const restored = await waitFor(() => client.get(accounts).catch(() => undefined), {
        what: "the restored accounts",
        timeoutMs: 20_000,
      });
      expect(restored.revision).toBe(revision);
      expect(restored.records.map(balance)).toEqual(atBackup);
      expect(await rejection(client.get(accounts, { revision: revision - 1 }))).toMatchObject({
        code: Status.OUT_OF_RANGE,
      });
      expect((await client.set({ after: "restore" })).revision).toBe(revision + 1);
    }
  } finally {
    for (const client of clients) client.close();
    for (const server of servers) await server.stop();
    backupRoot.cleanup();
  }
}, 120_000);

test("leaders settle where the placement puts them: each partition led by the node it lists first", async () => {
  const { nodes } = await startCluster();
  await setWhenReady(nodes[0]!, [["warm", "up"]]);
  const misplaced = async () => {
    const ring = await nodes[0]!.client.ring();
    return ring.partitions.filter((p) => p.leader !== p.replicas[0]).map((p) => `${p.partition}: ${p.leader}`);
  };
  await waitFor(async () => (await misplaced()).length === 0, {
    what: "every partition led by its preferred replica",
    timeoutMs: 30_000,
    intervalMs: 200,
    detail: async () => (await misplaced()).join(", "),
  });
}, 60_000);

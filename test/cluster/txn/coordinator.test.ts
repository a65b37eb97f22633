import { expect, test } from "bun:test";
import type { PeerRpc } from "../../../src/cluster/replication/peer-rpc.ts";
import { partitionOf } from "../../../src/cluster/ring/partition-of.ts";
import { type PartitionAccess, TxnCoordinator } from "../../../src/cluster/txn/coordinator.ts";
import type { PartitionGroup, VersionRecord } from "../../../src/cluster/txn/partition-group.ts";
import { peerPartitionAccess, servePartitions } from "../../../src/cluster/txn/partition-rpc.ts";
import { LOCK_ONLY } from "../../../src/cluster/txn/percolator.ts";
import { HomeKvError } from "../../../src/errors.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";
import { type MetaNode, names } from "../meta/meta-nodes.ts";
import { inProcessAccess as access, leaderOf, startPartitions } from "./partition-nodes.ts";

const PARTITIONS = 2;
const encode = (n: number) => new TextEncoder().encode(String(n));
const decode = (bytes: Uint8Array | undefined) => Number(new TextDecoder().decode(bytes ?? new Uint8Array()));

/**
 * Three nodes, two partitions, and a coordinator: reaching the partitions' leaders in this process,
 * or, `overRpc`, running on a node that leads none and reaching them over peer RPC (each node
 * serving its replicas).
 */
async function startBank(overRpc = false) {
  const { nodes, groups } = await startPartitions(PARTITIONS);
  for (let partition = 0; partition < PARTITIONS; partition++) await leaderOf(groups, partition, nodes);
  // Over RPC, the coordinator runs on a node that leads no partition (of three nodes, one at least):
  // every call goes to another node.
  const home = nodes.find((node) => groups.get(node)!.every((group) => !group.driver.leads)) ?? nodes[0]!;
  if (overRpc) for (const node of nodes) servePartitions(node.rpc, (partition) => groups.get(node)![partition]);
  let peerCalls = 0;
  const counted: PeerRpc = {
    ...home.rpc,
    call(...args) {
      peerCalls++;
      return home.rpc.call(...args);
    },
  };
  const routes = overRpc
    ? peerPartitionAccess({
        rpc: counted,
        local: (partition) => groups.get(home)![partition],
        partitionOf: (key) => partitionOf(new TextEncoder().encode(key), PARTITIONS),
        // The leader this node's replica knows first, then the others.
        candidates: (partition) => {
          const leader = names.get(groups.get(home)![partition]!.driver.leader);
          const others = nodes.filter((node) => node !== home).map((node) => names.get(node.id)!);
          return leader && leader !== names.get(home.id) ? [leader, ...others.filter((n) => n !== leader)] : others;
        },
        callTimeoutMs: 2_000,
        pause: () => groups.get(home)![0]!.driver.nextTick(),
        rounds: 300,
      })
    : access(nodes, groups, PARTITIONS);
  const coordinator = new TxnCoordinator({
    access: routes,
    timestamps: (count) => (overRpc ? home : nodes.find((node) => !node.stopped)!).timestamps.take(count),
    lockTtlMs: 500,
    now: () => Date.now(),
    pause: (ms) => Bun.sleep(ms), // a reader's back-off while a transaction is open, not a test's synchronisation
    readTimeoutMs: 5_000,
  });
  return { nodes, groups, coordinator, home, peerCalls: () => peerCalls };
}

/** The values a read found. */
const valuesOf = (read: { records: readonly VersionRecord[] }) => read.records.map((record) => record.value);

const accounts = Array.from({ length: 6 }, (_, i) => `account-${i}`);

async function runBank(
  kill?: (nodes: readonly MetaNode[], groups: Map<MetaNode, PartitionGroup[]>, home: MetaNode) => void,
  overRpc = false,
) {
  const { nodes, groups, coordinator, home, peerCalls } = await startBank(overRpc);
  // The accounts fall on both partitions.
  expect(new Set(accounts.map((key) => partitionOf(new TextEncoder().encode(key), PARTITIONS))).size).toBe(2);
  await coordinator.commit(accounts.map((key) => ({ key, value: encode(100) })));
  const total = 100 * accounts.length;
  let committed = 0;
  let conflicts = 0;
  let unknown = 0;
  let reads = 0;
  const transfers = async (client: number) => {
    for (let i = 0; i < 15; i++) {
      const from = accounts[(client + i) % accounts.length]!;
      const to = accounts[(client * 2 + i + 1) % accounts.length]!;
      if (from === to) continue;
      const read = await coordinator.get([from, to]);
      const { ts } = read;
      const values = valuesOf(read);
      const amount = Math.min(decode(values[0]), 1 + ((client + i) % 20));
      try {
        await coordinator.commit(
          [
            { key: from, value: encode(decode(values[0]) - amount) },
            { key: to, value: encode(decode(values[1]) + amount) },
          ],
          ts,
        );
        committed++;
      } catch (error) {
        // A one-round write whose leader was killed before it answered: applied or not, whole either way.
        if (error instanceof HomeKvError && /may or may not have been applied/.test(error.message)) unknown++;
        else if (error instanceof HomeKvError && error.code === "E_CONFLICT") conflicts++;
        else throw error;
      }
    }
  };
  const readers = async () => {
    for (let i = 0; i < 15; i++) {
      const values = valuesOf(await coordinator.get(accounts));
      expect(values.reduce((sum, value) => sum + decode(value), 0)).toBe(total);
      reads++;
    }
  };
  const nemesis = async () => {
    if (!kill) return;
    // Once a few transfers went through, while the others run.
    while (committed < 5) await groups.get(nodes[0]!)![0]!.driver.nextTick();
    kill(nodes, groups, home);
  };
  await Promise.all([transfers(0), transfers(1), transfers(2), transfers(3), readers(), readers(), nemesis()]);
  const values = valuesOf(await coordinator.get(accounts));
  expect(values.reduce((sum, value) => sum + decode(value), 0)).toBe(total);
  return { committed, conflicts, unknown, reads, peerCalls: peerCalls() };
}

test("the bank over real transports: concurrent transfers across two partitions, concurrent readers; every read sums to the total", async () => {
  const run = await runBank();
  console.log(`bank over real transports: ${JSON.stringify(run)}`);
  expect(run.committed).toBeGreaterThan(20);
}, 60_000);

test("the bank over peer RPC: the coordinator on one node reaches the partitions' leaders on the others; a node killed mid-run", async () => {
  const run = await runBank((nodes, groups, home) => {
    // The node leading partition 0, or else the one leading partition 1, but never the coordinator's own.
    const others = nodes.filter((node) => node !== home);
    (others.find((node) => groups.get(node)![0]!.driver.leads) ?? others[0]!).stop();
  }, true);
  console.log(`bank over peer RPC, a node killed: ${JSON.stringify(run)}`);
  expect(run.committed).toBeGreaterThan(10);
  // The other nodes' leaders were reached over RPC (before the kill every call goes there; after it
  // a partition may be led by the coordinator's node, and called directly).
  expect(run.peerCalls).toBeGreaterThan(30);
}, 60_000);

test("the bank while partition 0's leader is killed: the survivors elect one and the money stays whole", async () => {
  const run = await runBank((nodes, groups) => {
    nodes.find((node) => groups.get(node)![0]!.driver.leads)!.stop();
  });
  console.log(`bank with a leader killed: ${JSON.stringify(run)}`);
  expect(run.committed).toBeGreaterThan(10);
}, 60_000);

/** Two accounts, on partitions 0 and 1. */
const [a, b] = [0, 1].map((p) => accounts.find((k) => partitionOf(new TextEncoder().encode(k), PARTITIONS) === p)!) as [
  string,
  string,
];

/** A transaction writing `value` to a and b (a its primary), prewritten and left there: its coordinator died. */
async function abandoned(nodes: readonly MetaNode[], routes: PartitionAccess, expiresAtMs: number, value: number) {
  const startTs = await nodes[0]!.timestamps.take(1);
  for (const [partition, key] of [
    [0, a],
    [1, b],
  ] as const) {
    const prewrite = {
      type: "prewrite",
      startTs,
      primary: a,
      expiresAtMs,
      mutations: [{ key, value: encode(value) }],
    } as const;
    expect(await routes.propose(partition, prewrite)).toEqual({ ok: true });
  }
  return startTs;
}

test("a transaction with nothing to write is refused, naming why", async () => {
  const { coordinator } = await startBank();
  expect(await rejectionMessage(coordinator.commit([]))).toMatch("a transaction with nothing to write");
});

test("a transaction whose coordinator died after its prewrites: a reader waits out its TTL, rolls it back, and reads what was there", async () => {
  const { nodes, groups, coordinator } = await startBank();
  await coordinator.commit([
    { key: a, value: encode(1) },
    { key: b, value: encode(2) },
  ]);
  const routes = access(nodes, groups, PARTITIONS);
  const expiresAtMs = Date.now() + 300;
  const startTs = await abandoned(nodes, routes, expiresAtMs, 99);
  // The coordinator is gone: nobody commits. A reader waits for the TTL, then rolls the transaction back.
  const values = valuesOf(await coordinator.get([a, b]));
  expect(Date.now()).toBeGreaterThanOrEqual(expiresAtMs);
  expect(values.map(decode)).toEqual([1, 2]);
  expect(await routes.status(0, a, startTs)).toEqual({ state: "rolled-back" });
  // Its late commit is refused.
  const commitTs = await nodes[0]!.timestamps.take(1);
  expect(await routes.propose(0, { type: "commit", startTs, commitTs, keys: [a], primary: a })).toMatchObject({
    ok: false,
  });
});

test("a lock whose primary's prewrite has not arrived is waited out to its TTL, not rolled back at once", async () => {
  const { nodes, groups, coordinator } = await startBank();
  await coordinator.commit([{ key: b, value: encode(2) }]);
  const routes = access(nodes, groups, PARTITIONS);
  const startTs = await nodes[0]!.timestamps.take(1);
  const expiresAtMs = Date.now() + 300;
  // Only the secondary's prewrite went through (the primary's still on its way, or lost).
  const prewrite = {
    type: "prewrite",
    startTs,
    primary: a,
    expiresAtMs,
    mutations: [{ key: b, value: encode(5) }],
  } as const;
  expect(await routes.propose(1, prewrite)).toEqual({ ok: true });
  const values = valuesOf(await coordinator.get([b]));
  expect(Date.now()).toBeGreaterThanOrEqual(expiresAtMs);
  expect(values.map(decode)).toEqual([2]);
  expect(await routes.status(0, a, startTs)).toEqual({ state: "rolled-back" });
});

test("a transaction whose coordinator died after its primary committed: a reader rolls the secondary forward", async () => {
  const { nodes, groups, coordinator } = await startBank();
  const routes = access(nodes, groups, PARTITIONS);
  const startTs = await abandoned(nodes, routes, Date.now() + 60_000, 7);
  const commitTs = await nodes[0]!.timestamps.take(1);
  expect(await routes.propose(0, { type: "commit", startTs, commitTs, keys: [a], primary: a })).toEqual({ ok: true });
  // The secondary's lock stands (its commit never sent); a reader commits it and reads the whole transaction.
  const values = valuesOf(await coordinator.get([a, b]));
  expect(values.map(decode)).toEqual([7, 7]);
  expect(
    (await routes.read(1, [b], commitTs, new Set())).map((f) => ("record" in f ? decode(f.record.value) : "locked")),
  ).toEqual([7]);
});

/** `amount` when `commit` went through, 0 when it was refused as a conflict. */
const added = (commit: Promise<unknown>, amount: number) =>
  commit.then(
    () => amount,
    (error) => {
      if (!(error instanceof HomeKvError && error.code === "E_CONFLICT")) throw error;
      return 0;
    },
  );

test("a one-partition write that read first (readAt) cannot land below a later reader's timestamp: no lost update", async () => {
  const { nodes, groups } = await startBank();
  const routes = access(nodes, groups, PARTITIONS);
  // T2's single-partition write is held between the coordinator and the partition, as a slow link would.
  let held: (() => void) | undefined;
  const entered = Promise.withResolvers<void>();
  const release = Promise.withResolvers<void>();
  const hold = async <T>(call: () => Promise<T>): Promise<T> => {
    if (held === undefined) {
      held = () => release.resolve();
      entered.resolve();
      await release.promise;
    }
    return call();
  };
  const slow: PartitionAccess = {
    ...routes,
    write: (p, mutations, readAt) => hold(() => routes.write(p, mutations, readAt)),
    propose: (p, command) =>
      command.type === "onePhase" ? hold(() => routes.propose(p, command)) : routes.propose(p, command),
  };
  const options = {
    timestamps: (count: number) => nodes[0]!.timestamps.take(count),
    lockTtlMs: 500,
    now: () => Date.now(),
    pause: (ms: number) => Bun.sleep(ms), // a reader's back-off while a transaction is open
    readTimeoutMs: 5_000,
  };
  const direct = new TxnCoordinator({ ...options, access: routes });
  const delayed = new TxnCoordinator({ ...options, access: slow });
  await direct.commit([{ key: a, value: encode(100) }]);
  // T2 reads, then adds 5; its write is held on the way.
  const read2 = await delayed.get([a]);
  const t2 = added(delayed.commit([{ key: a, value: encode(decode(valuesOf(read2)[0]) + 5) }], read2.ts), 5);
  await entered.promise;
  // T1 reads after T2 has asked for whatever it takes before reaching the partition; T2 lands; T1
  // adds 1 to what it read and commits.
  const read1 = await direct.get([a]);
  held!();
  const added2 = await t2;
  const added1 = await added(direct.commit([{ key: a, value: encode(decode(valuesOf(read1)[0]) + 1) }], read1.ts), 1);
  // Whatever the fates, the value holds every increment that was committed, and one was.
  expect(added1 + added2).toBeGreaterThan(0);
  expect(decode(valuesOf(await direct.get([a]))[0])).toBe(100 + added1 + added2);
});

test("a writer that meets an abandoned transaction's expired lock resolves it: its retry goes through, with no reader needed", async () => {
  const { nodes, groups, coordinator } = await startBank();
  const routes = access(nodes, groups, PARTITIONS);
  const startTs = await abandoned(nodes, routes, Date.now() - 1, 99);
  const outcomes: string[] = [];
  for (let attempt = 0; attempt < 2 && outcomes.at(-1) !== "committed"; attempt++)
    outcomes.push(
      await added(coordinator.commit([{ key: b, value: encode(5) }]), 1).then((n) => (n ? "committed" : "conflict")),
    );
  expect(outcomes.at(-1)).toBe("committed");
  expect(await routes.status(0, a, startTs)).toEqual({ state: "rolled-back" });
  expect(valuesOf(await coordinator.get([a, b])).map(decode)).toEqual([0, 5]);
});

test("over peer RPC, reads answer keys that are missing (one byte each) and read past a lock committed above them (bypass)", async () => {
  const { coordinator, peerCalls } = await startBank(true);
  const missing = Array.from({ length: 12 }, (_, i) => `nobody-${i}`);
  const calls = peerCalls();
  expect(valuesOf(await coordinator.get(missing))).toEqual(missing.map(() => undefined));
  expect(peerCalls()).toBeGreaterThan(calls);
  // A read at a timestamp below a later commit reads past it: the partition is asked again with a bypass.
  const before = await coordinator.timestamp();
  await coordinator.commit([
    { key: a, value: encode(7) },
    { key: b, value: encode(8) },
  ]);
  expect(valuesOf(await coordinator.get([a, b], before))).toEqual([undefined, undefined]);
  expect(valuesOf(await coordinator.get([a, b]))).toEqual([encode(7), encode(8)]);
}, 30_000);

test("a scan pages every partition's keys at one timestamp in key order, either way, and rolls forward a committed transaction's lock it meets", async () => {
  const { nodes, groups, coordinator } = await startBank();
  const keys = Array.from({ length: 20 }, (_, i) => `k${String(i).padStart(2, "0")}`);
  expect(new Set(keys.map((key) => partitionOf(new TextEncoder().encode(key), PARTITIONS))).size).toBe(2);
  await coordinator.commit(keys.map((key, i) => ({ key, value: encode(i) })));
  const before = await coordinator.timestamp();
  // A transaction over a and b, decided on its primary a, its secondary b's lock still there.
  const routes = access(nodes, groups, PARTITIONS);
  const startTs = await abandoned(nodes, routes, Date.now() + 60_000, 7);
  const commitTs = await nodes[0]!.timestamps.take(1);
  expect(await routes.propose(0, { type: "commit", startTs, commitTs, keys: [a], primary: a })).toEqual({ ok: true });
  const now = await coordinator.timestamp();

  const all = async (ts: number, reverse: boolean, limit: number) => {
    const seen: string[] = [];
    let after: string | undefined;
    for (let page = 0; page < 20; page++) {
      const { records, next } = await coordinator.scan(
        { after, reverse },
        ts,
        { limit, bytesMax: 1 << 20 },
        PARTITIONS,
      );
      seen.push(...records.map((r) => `${r.key}=${decode(r.value)}`));
      if (next === undefined) return seen;
      after = next;
    }
    throw new Error("more than 20 pages");
  };
  const expected = [...keys.map((key, i) => `${key}=${i}`), `${a}=7`, `${b}=7`].sort();
  expect(await all(now, false, 7)).toEqual(expected);
  expect(await all(now, true, 5)).toEqual([...expected].reverse());
  // At the timestamp before the transaction: neither of its keys.
  expect(await all(before, false, 100)).toEqual(keys.map((key, i) => `${key}=${i}`));
  // A range and its bounds.
  const { records } = await coordinator.scan(
    { start: "k05", end: "k08" },
    now,
    { limit: 100, bytesMax: 1 << 20 },
    PARTITIONS,
  );
  expect(records.map((r) => r.key)).toEqual(["k05", "k06", "k07"]);
  expect(records[0]).toMatchObject({ modRevision: expect.any(Number), version: 1 });
});

test("a scan goes on past a partition whose page was cut short by the deleted keys it visited, skipping none of its live keys", async () => {
  const { coordinator } = await startBank();
  // Over a thousand deleted keys in partition 0 before the live ones (a page of 1 visits at most 1,004
  // keys), none in partition 1: partition 1's first page reaches live keys that partition 0's does not.
  const dead = Array.from({ length: 4_000 }, (_, i) => `d${String(i).padStart(4, "0")}`).filter(
    (key) => partitionOf(new TextEncoder().encode(key), PARTITIONS) === 0,
  );
  expect(dead.length).toBeGreaterThan(1_500);
  await coordinator.commit(dead.map((key) => ({ key, value: encode(0) })));
  await coordinator.commit(dead.map((key) => ({ key, value: null })));
  const live = Array.from({ length: 12 }, (_, i) => `e${String(i).padStart(2, "0")}`);
  await coordinator.commit(live.map((key, i) => ({ key, value: encode(i) })));
  const ts = await coordinator.timestamp();
  const seen: string[] = [];
  let after: string | undefined;
  let empty = 0;
  for (let page = 0; page < 100; page++) {
    const { records, next } = await coordinator.scan({ after }, ts, { limit: 1, bytesMax: 1 << 20 }, PARTITIONS);
    seen.push(...records.map((r) => r.key));
    if (records.length === 0 && next !== undefined) empty++;
    if (next === undefined) break;
    after = next;
  }
  expect(seen).toEqual(live);
  expect(empty).toBeGreaterThan(0); // pages cut before any live key, which the scan went on after
}, 30_000);

test("over peer RPC, a key's TTL deadline comes back with it from a read and from a scan, as it does in process", async () => {
  const { coordinator } = await startBank(true);
  const expiresAtMs = Date.now() + 60_000;
  const keys = Array.from({ length: 8 }, (_, i) => `ttl-${i}`);
  expect(new Set(keys.map((key) => partitionOf(new TextEncoder().encode(key), PARTITIONS))).size).toBe(2);
  await coordinator.commit(keys.map((key) => ({ key, value: encode(1), expiresAtMs })));
  const read = await coordinator.get(keys);
  expect(read.records.map((record) => record.expiresAtMs)).toEqual(keys.map(() => expiresAtMs));
  const page = await coordinator.scan(
    { start: "ttl-", end: "ttl." },
    read.ts,
    { limit: 10, bytesMax: 1 << 20 },
    PARTITIONS,
  );
  expect(page.records.map((record) => [record.key, record.expiresAtMs])).toEqual(keys.map((key) => [key, expiresAtMs]));
}, 30_000);

test("over peer RPC, a write with a request id that was applied, sent again and refused by a lock in its way, is answered with the first's result", async () => {
  const { nodes, groups, coordinator } = await startBank(true);
  const request = { id: "once", deleted: 0 };
  const first = await coordinator.commit([{ key: b, value: encode(1) }], undefined, request);
  expect(first.duplicate).toBeUndefined();
  // Another transaction in flight holds b (lock-only: it read b) well past this test.
  const routes = access(nodes, groups, PARTITIONS);
  const startTs = await nodes[0]!.timestamps.take(1);
  const held = { type: "prewrite", startTs, primary: b, expiresAtMs: Date.now() + 60_000 } as const;
  expect(await routes.propose(1, { ...held, mutations: [{ key: b, value: LOCK_ONLY }] })).toEqual({ ok: true });
  // The prewrite is refused before the id's commit is reached: the id's partition is asked instead.
  expect(await coordinator.commit([{ key: b, value: encode(1) }], undefined, request)).toEqual({
    ts: first.ts,
    duplicate: { revision: first.ts, deleted: 0 },
  });
  // An id never applied is refused as a conflict, as before.
  expect(
    await rejectionMessage(coordinator.commit([{ key: b, value: encode(2) }], undefined, { id: "new", deleted: 0 })),
  ).toMatch(/locked/);
}, 30_000);

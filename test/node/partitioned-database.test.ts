import { expect, test } from "bun:test";
import { TxnCoordinator } from "../../src/cluster/txn/coordinator.ts";
import { partitionedDatabase } from "../../src/node/partitioned-database.ts";
import type { DatabaseStats } from "../../src/storage/database.ts";
import type { Compare, TxnCommand } from "../../src/storage/ops.ts";
import { inProcessAccess, leaderOf, startPartitions } from "../cluster/txn/partition-nodes.ts";
import { waitFor } from "../helpers/wait.ts";

const PARTITIONS = 2;
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));

/** A partitioned database over three in-process nodes; its commits that read first (Txn, Del) wait while it is shut. */
async function startDatabase() {
  const { nodes, groups } = await startPartitions(PARTITIONS);
  for (let partition = 0; partition < PARTITIONS; partition++) await leaderOf(groups, partition, nodes);
  const coordinator = new TxnCoordinator({
    access: inProcessAccess(nodes, groups, PARTITIONS),
    timestamps: (count) => nodes[0]!.timestamps.take(count),
    lockTtlMs: 5_000,
    now: () => Date.now(),
    pause: (ms) => Bun.sleep(ms), // a reader's back-off while a transaction is open, not a test's synchronisation
    readTimeoutMs: 5_000,
  });
  let gate: Promise<void> | undefined;
  let waiting = 0;
  const db = partitionedDatabase({
    coordinator: {
      get: (keys, ts) => coordinator.get(keys, ts),
      timestamp: () => coordinator.timestamp(),
      compact: (revision, partitions) => coordinator.compact(revision, partitions),
      async commit(mutations, readAt) {
        if (gate && readAt !== undefined) {
          waiting++;
          await gate;
        }
        return coordinator.commit(mutations, readAt);
      },
    },
    partitions: () => PARTITIONS,
    stats: () => ({}) as DatabaseStats,
    close: async () => {},
  });
  return {
    db,
    /** Holds every commit that read first until the function returned is called. */
    shut() {
      const opened = Promise.withResolvers<void>();
      gate = opened.promise;
      return () => {
        gate = undefined;
        opened.resolve();
      };
    },
    waiting: () => waiting,
  };
}

const valueIs = (key: string, value: string): Compare => ({ key, target: "value", op: "==", value: bytes(value) });

test("write skew is refused: two transactions each reading the key the other writes cannot both commit", async () => {
  const { db, shut, waiting } = await startDatabase();
  // Two on-call doctors; each may go off call only while the other stays on (the classic write skew).
  await db.write([
    { key: "alice", value: bytes("on") },
    { key: "bob", value: bytes("on") },
  ]);
  const offCall = (me: string, other: string): TxnCommand => ({
    compares: [valueIs(other, "on")],
    success: [{ key: me, value: bytes("off") }],
    failure: [],
  });
  // Both read before either commits: each sees the other on call.
  const open = shut();
  const results = [db.txn(offCall("alice", "bob")), db.txn(offCall("bob", "alice"))];
  await waitFor(() => waiting() === 2, { what: "both transactions at their commit" });
  open();
  const [first, second] = await Promise.all(results);
  expect([first!.succeeded, second!.succeeded].sort()).toEqual([false, true]);
  const { records } = await db.get(["alice", "bob"]);
  expect(records.map((record) => text(record.value)).sort()).toEqual(["off", "on"]);
}, 30_000);

test("a Txn's gets see its writes before them, with the commit's revision; a read-only Txn commits nothing", async () => {
  const { db } = await startDatabase();
  const { revision: written } = await db.write([{ key: "a", value: bytes("1") }]);
  const result = await db.txn({
    compares: [valueIs("a", "1")],
    success: [{ get: "a" }, { key: "a", value: bytes("2") }, { get: "a" }, { key: "b", value: null }, { get: "b" }],
    failure: [],
  });
  expect(result.succeeded).toBe(true);
  expect(result.revision).toBeGreaterThan(written);
  expect(result.reads.map((r) => [r.key, text(r.value), r.modRevision, r.createRevision, r.version])).toEqual([
    ["a", "1", written, written, 1],
    ["a", "2", result.revision, written, 2],
    ["b", undefined, 0, 0, 0],
  ]);
  const readOnly = await db.txn({ compares: [valueIs("a", "9")], success: [], failure: [{ get: "a" }] });
  expect(readOnly.succeeded).toBe(false);
  expect(readOnly.reads.map((r) => text(r.value))).toEqual(["2"]);
  expect((await db.get(["a"])).records[0]!.modRevision).toBe(result.revision);
}, 30_000);

test("a Txn whose compared key is written between its read and its commit runs again, and sees the write", async () => {
  const { db, shut, waiting } = await startDatabase();
  await db.write([{ key: "x", value: bytes("1") }]);
  const open = shut();
  const bump = db.txn({ compares: [valueIs("x", "1")], success: [{ key: "x", value: bytes("2") }], failure: [] });
  await waitFor(() => waiting() === 1, { what: "the transaction at its commit" });
  await db.write([{ key: "x", value: bytes("5") }]);
  open();
  expect((await bump).succeeded).toBe(false);
  expect(text((await db.get(["x"])).records[0]!.value)).toBe("5");
}, 30_000);

test("Compact: reads below it are refused OUT_OF_RANGE on every partition, reads above go on; past the newest revision it is refused", async () => {
  const { db } = await startDatabase();
  const first = await db.write([
    { key: "a", value: bytes("1") },
    { key: "b", value: bytes("1") },
  ]);
  const second = await db.write([
    { key: "a", value: bytes("2") },
    { key: "b", value: bytes("2") },
  ]);
  expect((await db.get(["a", "b"], { revision: first.revision })).records.map((r) => text(r.value))).toEqual([
    "1",
    "1",
  ]);
  const compacted = await db.compact(second.revision);
  expect(compacted.compactedRevision).toBe(second.revision);
  await expect(db.get(["a"], { revision: first.revision })).rejects.toThrow(/compacted/);
  await expect(db.get(["b"], { revision: first.revision })).rejects.toThrow(/compacted/);
  expect((await db.get(["a", "b"], { revision: second.revision })).records.map((r) => text(r.value))).toEqual([
    "2",
    "2",
  ]);
  await expect(db.compact(compacted.revision + 1_000_000_000)).rejects.toThrow(/future/);
}, 30_000);

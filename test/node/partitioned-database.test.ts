import { afterEach, expect, test } from "bun:test";
import { partitionOf } from "../../src/cluster/ring/partition-of.ts";
import { requestKey, TxnCoordinator } from "../../src/cluster/txn/coordinator.ts";
import { LOCK_ONLY } from "../../src/cluster/txn/percolator.ts";
import { realFileSystem } from "../../src/io/fs/real-fs.ts";
import { writePartitionedBackup } from "../../src/node/partitioned-backup.ts";
import { partitionedDatabase } from "../../src/node/partitioned-database.ts";
import { partitionedWatches } from "../../src/node/partitioned-watches.ts";
import { createBackups } from "../../src/storage/backup/backup-dir.ts";
import { createDatabase, type Database, type DatabaseStats } from "../../src/storage/database.ts";
import { openDurableDatabase } from "../../src/storage/durable-database.ts";
import type { Compare, TxnCommand } from "../../src/storage/ops.ts";
import type { WatchBatch, WatchEnd } from "../../src/storage/watch/watch-hub.ts";
import { inProcessAccess, leaderOf, startPartitions } from "../cluster/txn/partition-nodes.ts";
import { keyNames } from "../helpers/backup.ts";
import { scratchDir } from "../helpers/processes.ts";
import { rejectionMessage } from "../helpers/rejection.ts";
import { waitFor } from "../helpers/wait.ts";

const PARTITIONS = 2;
const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const cleanup of cleanups.splice(0)) cleanup();
});
const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));

/** A partitioned database over three in-process nodes; its commits that read first (Txn, Del) wait while it is shut. */
async function startDatabase() {
  const { nodes, groups } = await startPartitions(PARTITIONS);
  for (let partition = 0; partition < PARTITIONS; partition++) await leaderOf(groups, partition, nodes);
  const access = inProcessAccess(nodes, groups, PARTITIONS);
  let timestampCalls = 0;
  let held: { call: number; reached: () => void; released: Promise<void> } | undefined;
  let pauses = 0;
  const coordinator = new TxnCoordinator({
    access,
    async timestamps(count) {
      if (++timestampCalls === held?.call) {
        held.reached();
        await held.released;
      }
      return nodes[0]!.timestamps.take(count);
    },
    lockTtlMs: 5_000,
    now: () => Date.now(),
    // A reader's back-off while a transaction is open, not a test's synchronisation.
    pause: (ms) => {
      pauses++;
      return Bun.sleep(ms);
    },
    readTimeoutMs: 5_000,
  });
  let gate: Promise<void> | undefined;
  let waiting = 0;
  let afterRound: (() => Promise<unknown>) | undefined;
  const dataDir = scratchDir("homekv-partitioned-data-");
  cleanups.push(dataDir.cleanup);
  const backups = createBackups({
    fs: realFileSystem,
    dataDir: dataDir.path,
    engine: "memory",
    log: () => {},
    // Rounds of 5 keys: a backup of a few dozen keys takes several, as one of millions takes thousands.
    write: (into) =>
      writePartitionedBackup({
        fs: realFileSystem,
        into,
        coordinator: {
          timestampNotBelow: (revision) => coordinator.timestampNotBelow(revision),
          async scan(...args) {
            const round = await coordinator.scan(...args);
            await afterRound?.();
            return round;
          },
        },
        partitions: () => PARTITIONS,
        roundKeys: 5,
      }),
  });
  const db = partitionedDatabase({
    coordinator: {
      get: (keys, ts) => coordinator.get(keys, ts),
      timestampNotBelow: (revision) => coordinator.timestampNotBelow(revision),
      compact: (revision, partitions) => coordinator.compact(revision, partitions),
      async commit(mutations, readAt, request) {
        if (gate && readAt !== undefined) {
          waiting++;
          await gate;
        }
        return coordinator.commit(mutations, readAt, request);
      },
    },
    partitions: () => PARTITIONS,
    watches: partitionedWatches({ access, coordinator, partitions: () => PARTITIONS, pollMs: 10 }),
    stats: () => ({}) as DatabaseStats,
    checkpoint: () => Promise.reject(new Error("these tests take no checkpoint")),
    backup: (target) => backups.backup(target),
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
    /**
     * Holds the coordinator's `nth` timestamp from now until released (a two-partition write's
     * second is its commit timestamp, asked once its prewrites hold their locks).
     */
    holdTimestamp(nth: number) {
      const reached = Promise.withResolvers<void>();
      const released = Promise.withResolvers<void>();
      held = { call: timestampCalls + nth, reached: reached.resolve, released: released.promise };
      return { reached: reached.promise, release: released.resolve };
    },
    /** Times a reader backed off from a lock of a transaction still open. */
    pauses: () => pauses,
    /** Runs `run` after each round of a backup's scan, before the next (a write between two rounds). */
    afterEachRound(run: () => Promise<unknown>) {
      afterRound = run;
    },
    access,
    nodes,
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
  expect(await rejectionMessage(db.get(["a"], { revision: first.revision }))).toMatch(/compacted/);
  expect(await rejectionMessage(db.get(["b"], { revision: first.revision }))).toMatch(/compacted/);
  expect((await db.get(["a", "b"], { revision: second.revision })).records.map((r) => text(r.value))).toEqual([
    "2",
    "2",
  ]);
  expect(await rejectionMessage(db.compact(compacted.revision + 1_000_000_000))).toMatch(/future/);
}, 30_000);

test("Backup: every partition at one timestamp, as a single server's data directory — whole commits only, every write acknowledged before the call, and the next write after it", async () => {
  const { db, afterEachRound } = await startDatabase();
  // Pairs across the two partitions, each pair written by one atomic Set.
  const left = keyNames("left", 12);
  const right = left.map((key) => key.replace("left", "right"));
  expect(new Set([...left, ...right].map((key) => partitionOf(bytes(key), PARTITIONS))).size).toBe(PARTITIONS);
  const pair = (i: number, value: string) =>
    db.write([
      { key: left[i]!, value: bytes(value) },
      { key: right[i]!, value: bytes(value) },
    ]);
  for (let i = 0; i < left.length; i++) await pair(i, `first ${i}`);
  // Written twice: their create and mod revisions differ.
  for (let i = 0; i < 3; i++) await pair(i, `second ${i}`);
  // A run of deleted keys ahead of them, over a thousand in each partition: the first rounds visit
  // as many as a partition may and find no live key (an empty round is not the end).
  const dead = keyNames("dead", 2_400);
  await db.write(dead.map((key) => ({ key, value: bytes("x") })));
  await db.write(dead.map((key) => ({ key, value: null })));
  await db.write([{ key: "leased", value: bytes("for an hour"), expiresAtMs: Date.now() + 3_600_000 }]);
  await db.write([{ key: "gone", value: bytes("soon") }]);
  await db.write([{ key: "gone", value: null }]);
  const acknowledged = (await db.get(["gone"])).revision;
  // Writers go on during the backup; what they commit after its timestamp is not in it. One pair is
  // written between every two rounds of its scan, so that some commits surely fall among them.
  let written = 0;
  const writers = (async () => {
    for (let n = 0; n < 30; n++) {
      await pair(n % left.length, `again ${n}`);
      written++;
    }
  })();
  let betweenRounds = 0;
  afterEachRound(() => pair(betweenRounds++ % left.length, `between rounds ${betweenRounds}`));
  const root = scratchDir("homekv-partitioned-backup-");
  cleanups.push(root.cleanup);
  const target = `${root.path}/backup`;
  const backup = await db.backup(target);
  await writers;
  expect(written).toBe(30);
  expect(betweenRounds).toBeGreaterThan(3);
  expect(backup.revision).toBeGreaterThanOrEqual(acknowledged);
  const keys = [...left, ...right, "leased", "gone"];
  const atBackup = (await db.get(keys, { revision: backup.revision })).records;
  expect(backup).toMatchObject({ keys: left.length * 2 + 1, linkedBytes: 0 });
  expect(atBackup.at(-2)!.expiresAtMs).toBeGreaterThan(Date.now());
  const restored = await openDurableDatabase({ dir: target });
  try {
    expect(restored.revision).toBe(backup.revision);
    const records = restored.read(keys, backup.revision).records;
    expect(records).toEqual(atBackup);
    for (let i = 0; i < left.length; i++) expect(text(records[i]!.value)).toBe(text(records[i + left.length]!.value));
    expect(records.at(-1)!.value).toBeUndefined();
    expect(restored.scan({ revision: backup.revision, limit: 100 }).records.map((r) => r.key)).toEqual(
      [...left, ...right, "leased"].sort(),
    );
    // Its history is not in it: below its revision, a read is refused as on a server compacted there.
    expect(() => restored.read(keys, backup.revision - 1)).toThrow(/compacted/);
    expect((await restored.write([{ key: "next", value: bytes("x") }])).revision).toBe(backup.revision + 1);
  } finally {
    await restored.close();
  }
}, 30_000);

test("Backup: a transaction whose locks are in place before the backup's timestamp and that commits after it is not in the backup; the backup's scan waits for it", async () => {
  const { db, holdTimestamp, pauses } = await startDatabase();
  // Two keys of different partitions: a write of both takes two phases.
  const a = "x";
  const b = ["y", "z", "w", "v", "u"].find(
    (key) => partitionOf(bytes(key), PARTITIONS) !== partitionOf(bytes(a), PARTITIONS),
  )!;
  await db.write([
    { key: a, value: bytes("before") },
    { key: b, value: bytes("before") },
  ]);
  // Its second timestamp is its commit's: asked once both prewrites hold their locks.
  const hold = holdTimestamp(2);
  const write = db.write([
    { key: a, value: bytes("after") },
    { key: b, value: bytes("after") },
  ]);
  await hold.reached;
  const pausedBefore = pauses();
  const root = scratchDir("homekv-partitioned-backup-");
  cleanups.push(root.cleanup);
  const backup = db.backup(`${root.path}/backup`);
  await waitFor(() => pauses() > pausedBefore, {
    what: "the backup's scan backing off from the open transaction's locks",
  });
  hold.release();
  const [{ revision }, committed] = await Promise.all([backup, write]);
  expect(committed.revision).toBeGreaterThan(revision);
  const restored = await openDurableDatabase({ dir: `${root.path}/backup` });
  try {
    expect(restored.read([a, b], revision).records.map((r) => text(r.value))).toEqual(["before", "before"]);
  } finally {
    await restored.close();
  }
  expect((await db.get([a, b])).records.map((r) => text(r.value))).toEqual(["after", "after"]);
}, 30_000);

/** A watcher of the database's watches, collecting what it takes. */
function collect(db: Database, options: { start: string; end?: string; startRevision: number; prevValue: boolean }) {
  const taken: WatchBatch[] = [];
  let ended: WatchEnd | undefined;
  const watcher = db.watches.watch(options, {
    wake: () => {
      for (let batch = watcher.take(); batch; batch = watcher.take()) taken.push(batch);
    },
    end: (end) => {
      ended = end;
    },
  });
  return { watcher, taken, ended: () => ended };
}

test("Watch across partitions: every change of the range once, in revision order, a commit's changes together; resumed from a revision, nothing missed", async () => {
  const { db } = await startDatabase();
  const before = await db.write([{ key: "w/0", value: bytes("old") }]);
  const live = collect(db, { start: "w/", end: "w0", startRevision: 0, prevValue: true });
  const commits = [];
  for (let i = 1; i <= 6; i++)
    commits.push(
      await db.write([
        { key: `w/${i}`, value: bytes(`v${i}`) },
        { key: `w/${i + 10}`, value: bytes(`v${i}`) },
        { key: "elsewhere", value: bytes(`v${i}`) },
      ]),
    );
  const deleted = await db.write([{ key: "w/0", value: null }]);
  const expected = [
    ...commits.map((c, i) => ({ revision: c.revision, keys: [`w/${i + 1}`, `w/${i + 11}`].sort() })),
    { revision: deleted.revision, keys: ["w/0"] },
  ];
  const shape = (batches: WatchBatch[]) =>
    batches.map((b) => ({ revision: b.revision, keys: b.events.map((e) => e.key).sort() }));
  await waitFor(() => shape(live.taken).length >= expected.length, { what: "every change delivered" });
  expect(shape(live.taken)).toEqual(expected);
  expect(live.taken.at(-1)!.events[0]).toMatchObject({ type: "delete", key: "w/0", prevValue: bytes("old") });
  live.watcher.close();
  // From a past revision: the same changes, and the first write too.
  const resumed = collect(db, { start: "w/", end: "w0", startRevision: before.revision, prevValue: false });
  await waitFor(() => resumed.taken.length >= expected.length + 1, { what: "the history replayed" });
  expect(shape(resumed.taken)).toEqual([{ revision: before.revision, keys: ["w/0"] }, ...expected]);
  resumed.watcher.close();
}, 30_000);

test("Watch across partitions: a transaction's changes are delivered only once it is decided, never before a change below them", async () => {
  const { db, shut, waiting } = await startDatabase();
  const watch = collect(db, { start: "t/", end: "t0", startRevision: 0, prevValue: false });
  // A transaction over both partitions held at its commit, while a one-round write goes by.
  const open = shut();
  const txn = db.txn({
    compares: [],
    success: [
      { key: "t/a", value: bytes("1") },
      { key: "t/b", value: bytes("1") },
    ],
    failure: [],
  });
  await waitFor(() => waiting() === 1, { what: "the transaction at its commit" });
  open();
  const committed = await txn;
  const after = await db.write([{ key: "t/c", value: bytes("2") }]);
  await waitFor(() => watch.taken.length >= 2, { what: "both commits delivered" });
  const revisions = watch.taken.map((b) => b.revision);
  expect(revisions).toEqual([...revisions].sort((x, y) => x - y));
  expect(watch.taken.map((b) => b.events.map((e) => e.key).sort())).toEqual([["t/a", "t/b"], ["t/c"]]);
  expect(revisions).toEqual([committed.revision, after.revision]);
  watch.watcher.close();
}, 30_000);

test("Watch across partitions from a compacted revision ends, saying so", async () => {
  const { db } = await startDatabase();
  const first = await db.write([{ key: "c/a", value: bytes("1") }]);
  const second = await db.write([
    { key: "c/a", value: bytes("2") },
    { key: "c/b", value: bytes("2") },
  ]);
  await db.compact(second.revision);
  const watch = collect(db, { start: "c/", end: "c0", startRevision: first.revision, prevValue: false });
  await waitFor(() => watch.ended(), { what: "the watcher ended" });
  expect(watch.ended()).toMatchObject({ reason: "compacted" });
}, 30_000);

test("Watch across partitions: a secondary committed late (its primary decided, its lock still there) is never skipped", async () => {
  const { db, access, nodes } = await startDatabase();
  const [a, b] = ["p/a", "p/c"]; // partitions 1 and 0
  const partitionOfKey = (key: string) => access.partitionOf(key);
  expect(partitionOfKey(a)).not.toBe(partitionOfKey(b));
  const watch = collect(db, { start: "p/", end: "p0", startRevision: 0, prevValue: false });
  // A transaction over a (primary) and b, prewritten; its primary committed; b's lock left standing.
  const startTs = await nodes[0]!.timestamps.take(1);
  for (const key of [a, b])
    await access.propose(partitionOfKey(key), {
      type: "prewrite",
      startTs,
      primary: a,
      expiresAtMs: Date.now() + 60_000,
      mutations: [{ key, value: bytes("t") }],
    });
  const commitTs = await nodes[0]!.timestamps.take(1);
  await access.propose(partitionOfKey(a), { type: "commit", startTs, commitTs, keys: [a], primary: a });
  // Writes after it on b's partition: the watcher must not pass them before b's version at commitTs.
  const later = await db.write([{ key: "p/d", value: bytes("later") }]); // partition 0, as b
  await waitFor(() => watch.taken.some((batch) => batch.revision === later.revision), { what: "the later write" });
  expect(watch.taken.map((batch) => [batch.revision, batch.events.map((e) => e.key).sort()])).toEqual([
    [commitTs, [a, b]],
    [later.revision, ["p/d"]],
  ]);
  watch.watcher.close();
}, 30_000);

test("TTLs across partitions: keys put with a deadline, by one round or two phases, are deleted after it; a key written again without one stays", async () => {
  const { db } = await startDatabase();
  const keys = Array.from({ length: 8 }, (_, i) => `ttl/${i}`);
  const partitions = new Set(keys.map((key) => partitionOf(bytes(key), PARTITIONS)));
  expect(partitions.size).toBe(PARTITIONS);
  const expiresAtMs = Date.now() + 300;
  // A Set across partitions (two phases: the deadline rides in the locks) and one in one partition.
  await db.write(keys.map((key) => ({ key, value: bytes("v"), expiresAtMs })));
  await db.write([{ key: "ttl/single", value: bytes("s"), expiresAtMs }]);
  const { revision: rewritten } = await db.write([{ key: "ttl/0", value: bytes("kept") }]);
  expect((await db.get([...keys, "ttl/single"])).records.every((r) => r.value !== undefined)).toBe(true);
  await waitFor(
    async () => (await db.get([...keys.slice(1), "ttl/single"])).records.every((r) => r.value === undefined),
    {
      what: "the keys to expire on both partitions",
      timeoutMs: 10_000,
      detail: async () =>
        JSON.stringify(
          (await db.get([...keys.slice(1), "ttl/single"])).records.map((r) => [r.key, text(r.value), r.modRevision]),
        ),
    },
  );
  const [kept] = (await db.get(["ttl/0"])).records;
  expect([text(kept!.value), kept!.modRevision]).toEqual(["kept", rewritten]);
  // The expiry is a delete at a new revision: a read before it still sees the values.
  const [before] = (await db.get(["ttl/1"], { revision: rewritten })).records;
  expect(text(before!.value)).toBe("v");
}, 30_000);

test("a Txn's get of a key it puts with a TTL sees the deadline, as a server's Txn does", async () => {
  const { db } = await startDatabase();
  const expiresAtMs = Date.now() + 60_000;
  const result = await db.txn({
    compares: [],
    success: [{ key: "ttl/txn", value: bytes("v"), expiresAtMs }, { get: "ttl/txn" }],
    failure: [],
  });
  expect(result.reads.map((record) => [text(record.value), record.expiresAtMs])).toEqual([["v", expiresAtMs]]);
  const [stored] = (await db.get(["ttl/txn"])).records;
  expect(stored!.expiresAtMs).toBe(expiresAtMs);
}, 30_000);

test("request ids: a Set, a Del and a Txn sent again with the same id apply once, and are answered with what the first did", async () => {
  const { db } = await startDatabase();
  // Keys of both partitions, so that both one-partition and two-partition writes are covered.
  const keys = ["a", "b", "c", "d", "e", "f"];
  const first = await db.write(
    keys.map((key) => ({ key, value: bytes("1") })),
    "set-1",
  );
  expect(first.duplicate).toBeUndefined();
  await db.write([{ key: "a", value: bytes("2") }]);
  const again = await db.write(
    keys.map((key) => ({ key, value: bytes("1") })),
    "set-1",
  );
  expect(again).toEqual({ revision: first.revision, deleted: 0, duplicate: true });
  expect(text((await db.get(["a"])).records[0]!.value)).toBe("2");

  const deleted = await db.write(
    ["b", "c", "nothing"].map((key) => ({ key, value: null })),
    "del-1",
  );
  expect(deleted.deleted).toBe(2);
  await db.write([{ key: "b", value: bytes("back") }]);
  expect(
    await db.write(
      ["b", "c", "nothing"].map((key) => ({ key, value: null })),
      "del-1",
    ),
  ).toEqual({ revision: deleted.revision, deleted: 2, duplicate: true });
  expect(text((await db.get(["b"])).records[0]!.value)).toBe("back");

  // A Txn whose retry would take the other branch (its compare no longer holds) is answered with the first's.
  const swap: TxnCommand = {
    compares: [valueIs("d", "1")],
    success: [{ key: "d", value: bytes("2") }, { get: "e" }],
    failure: [{ key: "f", value: bytes("failed") }],
  };
  const ran = await db.txn(swap, { requestId: "txn-1" });
  expect(ran.succeeded).toBe(true);
  const rerun = await db.txn(swap, { requestId: "txn-1" });
  expect(rerun).toEqual(ran);
  expect((await db.get(["d", "f"])).records.map((r) => text(r.value))).toEqual(["2", "1"]);
});

test("request ids: of many writers sending the same id at once, one applies and the others are answered with it", async () => {
  const { db } = await startDatabase();
  const results = await Promise.all(
    Array.from({ length: 8 }, (_, i) => db.write([{ key: `k${i % 3}`, value: bytes(`w${i}`) }], "once")),
  );
  expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
  expect(new Set(results.map((r) => r.revision)).size).toBe(1);
});

test("request ids: a Txn sent again whose branch this time writes nothing is answered with what the first did, as a server's is", async () => {
  // A compare-and-set with an empty else: the first run succeeds; sent again, its compare no longer
  // holds, and the branch it would take now writes nothing.
  const cas: TxnCommand = {
    compares: [valueIs("n", "1")],
    success: [{ key: "n", value: bytes("2") }],
    failure: [{ get: "n" }],
  };
  const server = createDatabase();
  await server.write([{ key: "n", value: bytes("1") }]);
  const served = await server.txn(cas, { requestId: "cas-1" });
  expect(await server.txn(cas, { requestId: "cas-1" })).toEqual({ ...served, reads: [] });

  const { db } = await startDatabase();
  await db.write([{ key: "n", value: bytes("1") }]);
  const ran = await db.txn(cas, { requestId: "cas-1" });
  expect(ran.succeeded).toBe(true);
  expect(await db.txn(cas, { requestId: "cas-1" })).toEqual({ revision: ran.revision, succeeded: true, reads: [] });
}, 30_000);

test("request ids: a Txn whose first run took a branch that writes nothing is remembered: sent again it takes that branch, not the other", async () => {
  const cas: TxnCommand = {
    compares: [valueIs("m", "1")],
    success: [{ key: "m", value: bytes("2") }],
    failure: [{ get: "m" }],
  };
  const { db } = await startDatabase();
  await db.write([{ key: "m", value: bytes("0") }]);
  const first = await db.txn(cas, { requestId: "cas-2" });
  expect(first.succeeded).toBe(false);
  // The compare would hold now: the id's first run decided the failure branch, and the retry keeps it.
  await db.write([{ key: "m", value: bytes("1") }]);
  const again = await db.txn(cas, { requestId: "cas-2" });
  expect([again.succeeded, again.revision]).toEqual([false, first.revision]);
  expect(text((await db.get(["m"])).records[0]!.value)).toBe("1");
}, 30_000);

test("request ids: a write applied, sent again while another transaction holds one of its keys, is answered with the first's result, not ABORTED", async () => {
  const { db, access, nodes } = await startDatabase();
  const set = await db.write([{ key: "busy", value: bytes("1") }], "set-busy");
  const del = await db.write([{ key: "gone", value: null }], "del-busy");
  const cas: TxnCommand = {
    compares: [valueIs("busy", "1")],
    success: [{ key: "other", value: bytes("x") }],
    failure: [],
  };
  const txn = await db.txn(cas, { requestId: "txn-busy" });
  // Transactions in flight that read "busy" and "gone" (lock-only: readers pass them, writers wait)
  // and outlast the writers' patience: the keys stay busy, as under a steady stream of others.
  const startTs = await nodes[0]!.timestamps.take(1);
  for (const key of ["busy", "gone"])
    await access.propose(access.partitionOf(key), {
      type: "prewrite",
      startTs,
      primary: key,
      expiresAtMs: Date.now() + 120_000,
      mutations: [{ key, value: LOCK_ONLY }],
    });
  // Each was applied: sent again it is answered with what it did (as a server answers from its table).
  const [setAgain, delAgain, txnAgain] = await Promise.all([
    db.write([{ key: "busy", value: bytes("1") }], "set-busy").catch(String),
    db.write([{ key: "gone", value: null }], "del-busy").catch(String),
    db.txn(cas, { requestId: "txn-busy" }).catch(String),
  ]);
  expect(setAgain).toEqual({ revision: set.revision, deleted: 0, duplicate: true });
  expect(delAgain).toEqual({ revision: del.revision, deleted: 0, duplicate: true });
  expect(txnAgain).toEqual({ revision: txn.revision, succeeded: true, reads: [] });
}, 60_000);

test("request ids: the id's lock of a write whose coordinator died after prewriting it (no reader ever meets it) does not hold compaction back", async () => {
  const { db, access, nodes } = await startDatabase();
  const keys = ["a", "b", "c", "d", "e", "f"];
  await db.write(keys.map((k) => ({ key: k, value: bytes("0") })));
  // The coordinator died with the id's lock prewritten and nothing else (its other prewrites refused,
  // its rollback never sent), and its client gave up: no retry of the id comes to resolve the lock.
  const key = requestKey("abandoned");
  const startTs = await nodes[0]!.timestamps.take(1);
  const prewrite = { type: "prewrite", startTs, primary: key, expiresAtMs: Date.now() - 1 } as const;
  expect(
    await access.propose(access.partitionOf(key), { ...prewrite, mutations: [{ key, value: LOCK_ONLY }] }),
  ).toEqual({ ok: true });
  // Keys of both partitions written, read and written again after it.
  await db.write(keys.map((k) => ({ key: k, value: bytes("1") })));
  await db.get(keys);
  const later = await db.write(keys.map((k) => ({ key: k, value: bytes("2") })));
  expect((await db.compact(later.revision)).compactedRevision).toBe(later.revision);
}, 30_000);

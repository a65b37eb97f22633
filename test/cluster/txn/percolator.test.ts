import { expect, test } from "bun:test";
import { LOCK_ONLY, TxnPartition, type VersionStore } from "../../../src/cluster/txn/percolator.ts";
import { storeVersions } from "../../../src/cluster/txn/store-versions.ts";
import { createStore } from "../../../src/storage/engine.ts";
import { type BankRun, emptyRun, MemoryVersions, runBank } from "./bank-model.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (found: ReturnType<TxnPartition["read"]>) =>
  "value" in found ? new TextDecoder().decode(found.value) : `locked by ${found.lock.startTs}`;

test("a transaction's life on one partition: prewrite locks, a reader at or after the start meets the lock, commit makes the version", () => {
  const p = new TxnPartition(new MemoryVersions());
  expect(
    p.prewrite(
      10,
      "a",
      [
        { key: "a", value: bytes("1") },
        { key: "b", value: bytes("2") },
      ],
      100,
    ),
  ).toEqual({ ok: true });
  expect(text(p.read("a", 9))).toBe("");
  expect(text(p.read("a", 10))).toBe("locked by 10");
  expect(p.status("a", 10)).toMatchObject({ state: "open" });
  expect(p.commit(10, 12, ["a", "b"], "a")).toEqual({ ok: true });
  expect(p.status("a", 10)).toEqual({ state: "committed", commitTs: 12 });
  expect(text(p.read("b", 11))).toBe("");
  expect(text(p.read("b", 12))).toBe("2");
  // Again (a retry): nothing changes.
  expect(p.commit(10, 12, ["a", "b"], "a")).toEqual({ ok: true });
  // A prewrite of the decided transaction (a late retry) is refused.
  expect(p.prewrite(10, "a", [{ key: "a", value: null }], 100)).toMatchObject({
    ok: false,
    refusal: { kind: "committed" },
  });
});

test("snapshot isolation: a key written after a transaction started, or locked by another, refuses its prewrite whole", () => {
  const p = new TxnPartition(new MemoryVersions());
  p.prewrite(5, "a", [{ key: "a", value: bytes("x") }], 100);
  p.commit(5, 8, ["a"], "a");
  expect(
    p.prewrite(
      7,
      "b",
      [
        { key: "b", value: bytes("y") },
        { key: "a", value: bytes("z") },
      ],
      100,
    ),
  ).toEqual({
    ok: false,
    refusal: { kind: "write-conflict", key: "a", committedTs: 8 },
  });
  expect(p.lockOf("b")).toBeUndefined(); // all or none
  p.prewrite(9, "c", [{ key: "c", value: bytes("1") }], 100);
  expect(p.prewrite(10, "d", [{ key: "c", value: bytes("2") }], 100)).toMatchObject({
    ok: false,
    refusal: { kind: "locked", key: "c", lock: { startTs: 9, primary: "c" } },
  });
});

test("a rollback decided on the primary beats a late commit, and a commit decided beats a late rollback", () => {
  const p = new TxnPartition(new MemoryVersions());
  p.prewrite(3, "a", [{ key: "a", value: bytes("1") }], 100);
  expect(p.rollback(3, ["a"], true)).toEqual({ ok: true });
  expect(p.commit(3, 4, ["a"], "a")).toEqual({ ok: false, refusal: { kind: "rolled-back", startTs: 3 } });
  expect(text(p.read("a", 10))).toBe("");
  p.prewrite(6, "b", [{ key: "b", value: bytes("2") }], 100);
  p.commit(6, 7, ["b"], "b");
  expect(p.rollback(6, ["b"], true)).toEqual({ ok: false, refusal: { kind: "committed", startTs: 6, commitTs: 7 } });
  // A primary whose prewrite never came: "missing" until a reader's rollback decides it, after which
  // the late prewrite is refused.
  expect(p.status("z", 20)).toEqual({ state: "missing" });
  p.rollback(20, ["z"], true);
  expect(p.prewrite(20, "z", [{ key: "z", value: bytes("3") }], 100)).toMatchObject({
    ok: false,
    refusal: { kind: "rolled-back" },
  });
});

const bankOver: [string, () => VersionStore][] = [
  ["a model of a store", () => new MemoryVersions()],
  // The real stores: revisions with gaps, secondaries committed late, history kept (no GC safe point yet).
  ["the memory engine", () => storeVersions(createStore({ kind: "memory" }, { historyRevisions: Infinity }))],
  [
    "the FLSM engine",
    () => storeVersions(createStore({ kind: "flsm", memtableBytes: 4_096 }, { historyRevisions: Infinity })),
  ],
];

test.each(bankOver)(
  "the bank over %s: transfers across three partitions with crashed clients and resolving readers; every read sums to the total",
  (_, versions) => {
    const seeds = versions === bankOver[0]![1] ? 400 : 100;
    const totals = emptyRun();
    for (let seed = 1; seed <= seeds; seed++) {
      const run = runBank(seed, 1_500, versions);
      for (const key of Object.keys(totals) as (keyof BankRun)[]) totals[key] += run[key];
    }
    console.log(`bank, ${seeds} seeds over ${_}: ${JSON.stringify(totals)}`);
    // The runs reach every path: commits in one phase and two, crashed clients, locks rolled forward and back.
    expect(totals.committed).toBeGreaterThan(seeds * 25);
    expect(totals.onePhase).toBeGreaterThan(seeds * 12);
    expect(totals.rolledForward).toBeGreaterThan(seeds * 10);
    expect(totals.rolledBack).toBeGreaterThan(seeds * 10);
    expect(totals.reads).toBeGreaterThan(seeds * 25);
  },
);

test("a one-phase transaction: all keys or none, refused on a lock or (having read) a newer commit; a blind write only on a lock", () => {
  const p = new TxnPartition(new MemoryVersions());
  expect(
    p.onePhase(1, 2, [
      { key: "a", value: bytes("1") },
      { key: "b", value: bytes("2") },
    ]),
  ).toEqual({ ok: true });
  expect(text(p.read("b", 2))).toBe("2");
  expect(
    p.onePhase(1, 3, [
      { key: "c", value: bytes("3") },
      { key: "a", value: bytes("4") },
    ]),
  ).toEqual({
    ok: false,
    refusal: { kind: "write-conflict", key: "a", committedTs: 2 },
  });
  expect(text(p.read("c", 9))).toBe("");
  p.prewrite(4, "b", [{ key: "b", value: null }], 100);
  expect(p.onePhase(undefined, 5, [{ key: "b", value: bytes("5") }])).toMatchObject({
    ok: false,
    refusal: { kind: "locked" },
  });
  expect(p.onePhase(undefined, 6, [{ key: "a", value: bytes("6") }])).toEqual({ ok: true });
});

test.each(bankOver.slice(1))(
  "over %s, a delete committed since a transaction's start is a write conflict too",
  (_, versions) => {
    const p = new TxnPartition(versions());
    expect(p.onePhase(undefined, 5, [{ key: "a", value: bytes("1") }])).toEqual({ ok: true });
    expect(p.onePhase(undefined, 9, [{ key: "a", value: null }])).toEqual({ ok: true });
    expect(p.prewrite(7, "a", [{ key: "a", value: bytes("2") }], 100)).toEqual({
      ok: false,
      refusal: { kind: "write-conflict", key: "a", committedTs: 9 },
    });
    expect(text(p.read("a", 8))).toBe("1");
    expect(text(p.read("a", 20))).toBe("");
  },
);

test.each(bankOver)(
  "over %s, a blind one-phase write proposed twice (a retry) is refused the second time, never thrown",
  (_, versions) => {
    const p = new TxnPartition(versions());
    const write = { key: "a", value: bytes("1") };
    expect(p.onePhase(undefined, 5, [write])).toEqual({ ok: true });
    expect(p.onePhase(undefined, 9, [{ key: "b", value: bytes("2") }])).toEqual({ ok: true });
    expect(p.onePhase(undefined, 5, [write])).toEqual({
      ok: false,
      refusal: { kind: "write-conflict", key: "a", committedTs: 5 },
    });
    expect(text(p.read("a", 9))).toBe("1");
  },
);

test("a primary's commit without its lock (its prewrite never applied) is refused and decides nothing", () => {
  const p = new TxnPartition(new MemoryVersions());
  expect(p.commit(30, 31, ["a"], "a")).toEqual({ ok: false, refusal: { kind: "lock-missing", key: "a" } });
  expect(p.status("a", 30)).toEqual({ state: "missing" });
  expect(text(p.read("a", 40))).toBe("");
});

test("a key written twice in one command: the last value, in one phase as in two, and the real store never asked to write it twice (it would throw where the entry is applied)", () => {
  const p = new TxnPartition(storeVersions(createStore({ kind: "memory" }, { historyRevisions: Infinity })));
  const twice = [
    { key: "a", value: bytes("1") },
    { key: "a", value: bytes("2") },
  ];
  expect(p.onePhase(undefined, 5, twice)).toEqual({ ok: true });
  expect(text(p.read("a", 5))).toBe("2");
  expect(p.prewrite(6, "b", [{ key: "b", value: bytes("x") }, ...twice], 0)).toEqual({ ok: true });
  expect(p.commit(6, 7, ["b", "a", "a"], "b")).toEqual({ ok: true });
  expect(text(p.read("a", 7))).toBe("2");
});

test("a lock-only mutation locks and checks its key like a write, and commits nothing there", () => {
  const versions = new MemoryVersions();
  const p = new TxnPartition(versions);
  expect(p.onePhase(undefined, 5, [{ key: "read", value: bytes("r5") }])).toEqual({ ok: true });
  // Transaction 10 read "read" and writes "out": "read" is locked only.
  const mutations = [
    { key: "out", value: bytes("o") },
    { key: "read", value: LOCK_ONLY },
  ] as const;
  expect(p.prewrite(10, "out", mutations, 100)).toEqual({ ok: true });
  // Another transaction cannot write the key read meanwhile; a reader reads past the lock, which
  // writes nothing whatever becomes of it.
  expect(p.prewrite(11, "read", [{ key: "read", value: bytes("x") }], 100)).toMatchObject({
    ok: false,
    refusal: { kind: "locked", key: "read" },
  });
  expect(text(p.read("read", 12))).toBe("r5");
  expect(p.locksAt(12, () => true).map(({ key }) => key)).toEqual(["out"]);
  expect(p.commit(10, 12, ["out", "read"], "out")).toEqual({ ok: true });
  expect(text(p.read("read", 12))).toBe("r5");
  expect(versions.newest("read")).toBe(5);
  expect(text(p.read("out", 12))).toBe("o");
  // A key read at 10 and written at 11 by another: the lock-only mutation is refused as a write would be.
  expect(p.onePhase(undefined, 13, [{ key: "read", value: bytes("r13") }])).toEqual({ ok: true });
  expect(p.onePhase(12, 14, [{ key: "read", value: LOCK_ONLY }])).toMatchObject({
    ok: false,
    refusal: { kind: "write-conflict", key: "read" },
  });
  // In one phase, it is checked and writes nothing.
  expect(
    p.onePhase(14, 15, [
      { key: "read", value: LOCK_ONLY },
      { key: "out", value: null },
    ]),
  ).toEqual({ ok: true });
  expect(versions.newest("read")).toBe(13);
  expect(text(p.read("out", 15))).toBe("");
});

test("compaction stops below every open lock's start (the GC safe point): a secondary committed late is never refused as compacted", () => {
  for (const versions of [
    new MemoryVersions(),
    storeVersions(createStore({ kind: "memory" }, { historyRevisions: Number.POSITIVE_INFINITY })),
  ]) {
    const p = new TxnPartition(versions);
    expect(p.prewrite(10, "elsewhere", [{ key: "a", value: bytes("a") }], 100)).toEqual({ ok: true });
    expect(p.onePhase(undefined, 55, [{ key: "b", value: bytes("b") }])).toEqual({ ok: true });
    // The transaction took commit timestamp 30; its secondary's commit here comes after a compaction to 50.
    expect(p.compact(50)).toBe(9);
    expect(p.commit(10, 30, ["a"])).toEqual({ ok: true });
    expect(text(p.read("a", 30))).toBe("a");
    // With no lock left, compaction goes where asked (at most the newest commit).
    expect(p.compact(50)).toBe(50);
    expect(p.compact(1_000)).toBe(55);
    // At or below the compacted revision nothing is checked or written: refused, never thrown.
    expect(p.onePhase(undefined, 54, [{ key: "c", value: bytes("c") }])).toMatchObject({
      ok: false,
      refusal: { kind: "write-conflict", committedTs: 55 },
    });
    expect(p.onePhase(40, 60, [{ key: "c", value: bytes("c") }])).toMatchObject({ ok: false });
    expect(p.prewrite(55, "c", [{ key: "c", value: bytes("c") }], 100)).toMatchObject({ ok: false });
    expect(p.onePhase(56, 60, [{ key: "c", value: bytes("c") }])).toEqual({ ok: true });
  }
});

test("a request id's attempt rolled back (a reader, past its TTL) is not remembered: its late commit is refused, and the next attempt of the id commits", () => {
  const p = new TxnPartition(new MemoryVersions());
  const request = { id: "r", deleted: 0 };
  expect(p.prewrite(10, "id", [{ key: "id", value: LOCK_ONLY }], 100)).toEqual({ ok: true });
  expect(p.rollback(10, ["id"], true)).toEqual({ ok: true });
  expect(p.commit(10, 12, ["id"], "id", request)).toEqual({ ok: false, refusal: { kind: "rolled-back", startTs: 10 } });
  expect(p.requestIds.get("r")).toBeUndefined();
  expect(p.prewrite(20, "id", [{ key: "id", value: LOCK_ONLY }], 100)).toEqual({ ok: true });
  expect(p.commit(20, 22, ["id"], "id", request)).toEqual({ ok: true });
  expect(p.requestIds.get("r")).toEqual({ revision: 22, deleted: 0 });
  // The first attempt's prewrite arriving late is refused too: it was decided.
  expect(p.prewrite(10, "id", [{ key: "id", value: LOCK_ONLY }], 100)).toMatchObject({ ok: false });
});

test("a lock-only lock holds compaction back nowhere: its commit writes nothing, below the compacted revision or not", () => {
  const p = new TxnPartition(new MemoryVersions());
  expect(p.onePhase(undefined, 5, [{ key: "b", value: bytes("b") }])).toEqual({ ok: true });
  // A write's request-id lock (its primary), left by a coordinator that died: no reader meets it.
  expect(p.prewrite(10, "id", [{ key: "id", value: LOCK_ONLY }], 100)).toEqual({ ok: true });
  expect(p.onePhase(undefined, 55, [{ key: "b", value: bytes("b2") }])).toEqual({ ok: true });
  expect(p.compact(50)).toBe(50);
  // Had its coordinator lived, its commit would still decide and remember its id.
  expect(p.commit(10, 30, ["id"], "id", { id: "r", deleted: 0 })).toEqual({ ok: true });
  expect(p.requestIds.get("r")).toEqual({ revision: 30, deleted: 0 });
});

test("a TTL's expiry deletes a key only while its newest version is the one that set the TTL, never under a lock or at a compacted timestamp", () => {
  const p = new TxnPartition(new MemoryVersions());
  p.onePhase(undefined, 10, [{ key: "a", value: bytes("a1"), expiresAtMs: 1 }]);
  p.onePhase(undefined, 20, [{ key: "b", value: bytes("b1"), expiresAtMs: 1 }]);
  // A transaction's commit of a landed below b's revision, after the sweeper looked.
  expect(p.prewrite(12, "a", [{ key: "a", value: bytes("txn") }], 100)).toEqual({ ok: true });
  // While it holds a, nothing is deleted: its commit may land below the expiry's timestamp.
  expect(
    p.expire(30, [
      { key: "b", revision: 20 },
      { key: "a", revision: 10 },
    ]),
  ).toMatchObject({
    ok: false,
    refusal: { kind: "locked", key: "a" },
  });
  expect(text(p.read("b", 30))).toBe("b1");
  expect(p.commit(12, 15, ["a"], "a")).toEqual({ ok: true });
  expect(
    p.expire(31, [
      { key: "a", revision: 10 },
      { key: "b", revision: 20 },
    ]),
  ).toEqual({ ok: true });
  expect([text(p.read("a", 31)), text(p.read("b", 31))]).toEqual(["txn", ""]);
  // At or below the compacted revision nothing is written: refused, for the sweeper to try again.
  p.onePhase(undefined, 40, [{ key: "c", value: bytes("c1"), expiresAtMs: 1 }]);
  p.compact(40);
  expect(p.expire(40, [{ key: "c", revision: 40 }])).toMatchObject({ ok: false, refusal: { kind: "write-conflict" } });
  expect(p.expire(41, [{ key: "c", revision: 40 }])).toEqual({ ok: true });
  expect(text(p.read("c", 41))).toBe("");
});

test("a request id decides once: the commit that decides remembers it; another transaction of the id is refused with what the first did, a repeat of the same commit is not", () => {
  const p = new TxnPartition(new MemoryVersions(), 2);
  const request = { id: "r1", deleted: 1, succeeded: true };
  expect(p.prewrite(10, "id", [{ key: "id", value: LOCK_ONLY }], 100)).toEqual({ ok: true });
  expect(p.commit(10, 12, ["id"], "id", request)).toEqual({ ok: true });
  // The same commit again (a proposal sent twice) changes nothing and is no duplicate.
  expect(p.commit(10, 12, ["id"], "id", request)).toEqual({ ok: true });
  expect(p.prewrite(20, "id", [{ key: "id", value: LOCK_ONLY }], 100)).toEqual({ ok: true });
  expect(p.commit(20, 22, ["id"], "id", { id: "r1", deleted: 0 })).toEqual({
    ok: false,
    refusal: { kind: "duplicate", write: { revision: 12, deleted: 1, succeeded: true } },
  });
  // Refused: not decided, its lock still there for the coordinator's rollback.
  expect(p.status("id", 20)).toMatchObject({ state: "open" });
  // The oldest id is forgotten past the table's capacity (2 here).
  for (const [startTs, id] of [
    [30, "r2"],
    [40, "r3"],
  ] as const) {
    p.prewrite(startTs, `k${id}`, [{ key: `k${id}`, value: bytes("v") }], 100);
    expect(p.commit(startTs, startTs + 1, [`k${id}`], `k${id}`, { id, deleted: 0 })).toEqual({ ok: true });
  }
  expect(p.requestIds.get("r1")).toBeUndefined();
  expect(p.requestIds.entries().map((e) => e.id)).toEqual(["r2", "r3"]);
});

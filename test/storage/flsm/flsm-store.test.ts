import { expect, test } from "bun:test";
import type { Entry, KeyRange } from "../../../src/storage/flsm/entry.ts";
import { createFlsmStore, type FlsmOptions, type FlsmStore } from "../../../src/storage/flsm/flsm-store.ts";
import { Memtable } from "../../../src/storage/flsm/memtable.ts";
import type { RunSource, StoredRun } from "../../../src/storage/flsm/runs.ts";
import type { WriteOp } from "../../../src/storage/ops.ts";
import { text } from "../../helpers/bytes.ts";
import { del, put } from "../../helpers/storage.ts";
import { waitFor } from "../../helpers/wait.ts";
import { MemoryLevels } from "./memory-levels.ts";

const commit = (store: FlsmStore, ...ops: WriteOp[]) => store.apply({ revision: store.revision + 1, ops });
const values = (store: FlsmStore, keys: string[], revision?: number) => store.read(keys, revision).map(text);

/** A run that counts how often the store asks it for a point read and for its entries. */
class CountedRun implements StoredRun {
  gets = 0;
  walks = 0;
  constructor(private readonly inner: Memtable) {}
  get maxRevision(): number {
    return this.inner.maxRevision;
  }
  get(key: Uint8Array, revision: number): Entry | undefined {
    this.gets++;
    return this.inner.get(key, revision);
  }
  entries(range: KeyRange, reverse?: boolean): Iterator<Entry> {
    this.walks++;
    return this.inner.entries(range, reverse);
  }
}

/** Levels of fixed runs, newest first. */
function levelsOf(...runs: StoredRun[]): RunSource {
  return { runsFor: () => runs, runsOverlapping: () => runs, entryCount: 0 };
}

/** A table stand-in: a frozen memtable holding `ops` at `revision` (new keys only). */
function tableOf(revision: number, ...ops: WriteOp[]): Memtable {
  const table = new Memtable();
  for (const { key, value } of ops) {
    table.add(key, {
      revision,
      value,
      createRevision: value === null ? 0 : revision,
      version: value ? 1 : 0,
    });
  }
  table.freeze();
  return table;
}

test("the memtable freezes between commands once it reaches its size; reads cross every memtable", () => {
  const store = createFlsmStore({ memtableBytes: 400, historyRevisions: Infinity });
  for (let i = 0; i < 30; i++) commit(store, put(`k${i % 7}`, `value ${i}`), put("same", String(i)));
  const { frozen, activeBytes } = store.memtableStats();
  expect(frozen).toBeGreaterThan(5);
  expect(activeBytes).toBeLessThan(400);
  expect(values(store, ["k0", "k6", "same"])).toEqual(["value 28", "value 27", "29"]);
  expect(values(store, ["k0", "same"], 1)).toEqual(["value 0", "0"]);
  expect(store.readRecords(["same"])[0]).toMatchObject({ createRevision: 1, version: 30, modRevision: 30 });
  expect(store.stats()).toMatchObject({ keys: 8, versions: 60 });
  // What the Metrics RPC and /metrics show of the engine.
  expect(store.stats().engine).toEqual({
    name: "flsm",
    memtableBytes: activeBytes,
    frozenMemtables: frozen,
    memtableFlushes: 0,
  });
});

test("frozen memtables are flushed one at a time, oldest first, and are read from the levels after", async () => {
  const levels = new MemoryLevels();
  const handed: Memtable[] = [];
  const store = createFlsmStore({
    memtableBytes: 1,
    historyRevisions: Infinity,
    levels,
    flush: (memtable) => {
      handed.push(memtable);
      return levels.flush(memtable);
    },
  });
  for (let i = 1; i <= 5; i++) commit(store, put("k", String(i)));
  // One flush in flight at a time.
  expect(handed.length).toBe(1);
  await waitFor(() => store.memtableStats().frozen === 0, {
    what: "every frozen memtable to be flushed",
    detail: () => JSON.stringify(store.memtableStats()),
  });
  expect(handed.map((memtable) => memtable.maxRevision)).toEqual([1, 2, 3, 4, 5]);
  expect(levels.runs.map((run) => run.maxRevision)).toEqual([5, 4, 3, 2, 1]);
  expect(store.memtableStats().flushes).toBe(5);
  expect([1, 3, 5].map((revision) => values(store, ["k"], revision)[0])).toEqual(["1", "3", "5"]);
});

test("a failed flush is reported, its memtable still read, and tried again at the next freeze", async () => {
  const levels = new MemoryLevels();
  levels.failing = true;
  const reports: string[] = [];
  const options: FlsmOptions = { memtableBytes: 1, levels, flush: levels.flush, report: (line) => reports.push(line) };
  const store = createFlsmStore({ ...options, historyRevisions: Infinity });
  commit(store, put("a", "1"));
  await waitFor(() => reports.length === 1, { what: "the failed flush to be reported" });
  expect(reports[0]).toContain("flush refused by the test");
  expect(store.memtableStats().frozen).toBe(1);
  expect(values(store, ["a"])).toEqual(["1"]);

  levels.failing = false;
  commit(store, put("b", "2"));
  await waitFor(() => store.memtableStats().frozen === 0, { what: "both memtables to be flushed" });
  expect(levels.runs.map((run) => run.maxRevision)).toEqual([2, 1]);
  expect(values(store, ["a", "b"])).toEqual(["1", "2"]);
});

test("a point read stops at the first run holding a version at or below its revision", () => {
  const newer = new CountedRun(tableOf(2, put("k", "new")));
  const older = new CountedRun(tableOf(1, put("k", "old"), put("only-old", "x")));
  const store = createFlsmStore({ levels: levelsOf(newer, older), historyRevisions: Infinity });
  store.restore(2, 0, []);
  expect(values(store, ["k"])).toEqual(["new"]);
  expect([newer.gets, older.gets]).toEqual([1, 0]);
  expect(values(store, ["k", "only-old"], 1)).toEqual(["old", "x"]);
  expect([newer.gets, older.gets]).toEqual([3, 2]);
});

test("a delete's tombstone stays while an older run holds the key, whatever GC does", () => {
  const store = createFlsmStore({ levels: levelsOf(tableOf(1, put("k", "old"))) });
  store.restore(1, 1, []);
  expect(commit(store, del("k"))).toEqual({ revision: 2, deleted: 1 });
  expect(store.collectGarbage(10).more).toBe(false);
  expect(values(store, ["k"])).toEqual([undefined]);
  expect(store.scan({ limit: 10, revision: 2 }).records).toEqual([]);
});

test("changes skip the runs with nothing after the revision, and still give the value before each change", () => {
  const old = new CountedRun(tableOf(1, put("a", "1"), put("b", "1")));
  const store = createFlsmStore({ levels: levelsOf(old), historyRevisions: Infinity });
  store.restore(1, 0, []);
  commit(store, put("a", "2"));
  const page = store.changes({ after: 1, limit: 10 });
  expect(old.walks).toBe(0);
  expect(
    page.changes.map(({ key, revision, value, previous }) => [key, revision, text(value), text(previous)]),
  ).toEqual([["a", 2, "2", "1"]]);
  store.changes({ after: 0, limit: 10 });
  expect(old.walks).toBe(1);
});

test("a restore larger than the memtable freezes as it goes, and reads it all back", () => {
  const store = createFlsmStore({ memtableBytes: 1_000 });
  const chains = Array.from({ length: 50 }, (_, i) => ({
    key: `key ${String(i).padStart(2, "0")}`,
    versions: [{ revision: i + 1, value: Buffer.from(`v${i}`), createRevision: i + 1, version: 1 }],
  }));
  store.restore(50, 10, chains);
  expect(store.memtableStats().frozen).toBeGreaterThan(3);
  expect(store.stats()).toMatchObject({ revision: 50, compactedRevision: 10, keys: 50, versions: 50 });
  expect(store.dumpChains({ limit: 100, revision: 50 })).toEqual(
    chains.map(({ key, versions }) => ({
      key,
      versions: versions.map((v) => ({ ...v, value: new Uint8Array(v.value) })),
    })),
  );
});

import { describe, expect, test } from "bun:test";
import { AssertionError, type ErrorCode, HomeKvError } from "../../src/errors.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { createDatabase } from "../../src/storage/database.ts";
import { createStore, type StoreEngine } from "../../src/storage/engine.ts";
import { openFlsmEngine } from "../../src/storage/flsm/disk-engine.ts";
import { createGcScheduler } from "../../src/storage/mvcc/gc.ts";
import type { GcSlice, MvccStore, StoreOptions } from "../../src/storage/mvcc/store.ts";
import type { WriteOp } from "../../src/storage/ops.ts";
import { bytes, text } from "../helpers/bytes.ts";

const put = (key: string, value: string): WriteOp => ({ key, value: bytes(value) });
const del = (key: string): WriteOp => ({ key, value: null });
const commit = (store: MvccStore, ...ops: WriteOp[]) => store.apply({ revision: store.revision + 1, ops });
const readText = (store: MvccStore, keys: string[], revision?: number) => store.read(keys, revision).map(text);

function errorOf(run: () => unknown): unknown {
  try {
    run();
  } catch (error) {
    return error;
  }
  throw new Error("expected the call to throw");
}

function expectHomeKvError(run: () => unknown, code: ErrorCode) {
  const error = errorOf(run);
  expect(error).toBeInstanceOf(HomeKvError);
  expect((error as HomeKvError).code).toBe(code);
}

/** Runs slices until GC reports nothing more; the bound turns a spinning GC into a failure, not a hang. */
function collectAll(store: MvccStore, maxKeys = 1_000): GcSlice[] {
  const slices: GcSlice[] = [];
  do {
    slices.push(store.collectGarbage(maxKeys));
    if (slices.length > 10_000) throw new Error("GC never reported more: false");
  } while (slices.at(-1)!.more);
  return slices;
}

const keyRange = (n: number, prefix = "k") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);

/**
 * The engines the store's contract is tested on. GC counts hold where GC sees every version: in the
 * memory engine, and in the FLSM engine while the memtable holds them all. A memtable that freezes
 * at every command or two leaves versions in frozen memtables, which only a table compaction drops
 * (the levels' job), so that engine skips the tests that count versions and GC work.
 */
interface EngineUnderTest {
  name: string;
  /** A database's settings for it. */
  engine: StoreEngine;
  /** A new, empty store of it. */
  open: (options: StoreOptions) => Promise<MvccStore>;
  countsGc: boolean;
}

const inMemory = (name: string, engine: StoreEngine, countsGc: boolean): EngineUnderTest => ({
  name,
  engine,
  open: async (options) => createStore(engine, options),
  countsGc,
});

/** The FLSM engine on disk (the in-memory file system), with a 256-byte memtable and 64-byte table blocks: reads cross many tables. */
const onDisk: EngineUnderTest = {
  name: "flsm on disk",
  engine: { kind: "flsm", memtableBytes: 256 },
  async open(options) {
    const tuning = { table: { blockBytes: 64, restartInterval: 2 } };
    const fs = new MemoryFileSystem();
    return (await openFlsmEngine({ fs, dir: "/flsm", memtableBytes: 256, storeOptions: options, tuning })).store;
  },
  countsGc: false,
};

const ENGINES: EngineUnderTest[] = [
  inMemory("memory", { kind: "memory" }, true),
  inMemory("flsm", { kind: "flsm", memtableBytes: 64 << 20 }, true),
  inMemory("flsm with a 256-byte memtable", { kind: "flsm", memtableBytes: 256 }, false),
  onDisk,
];

for (const engine of ENGINES) {
  describe(`the ${engine.name} engine`, () => describeStore(engine));
}

function describeStore({ engine, open, countsGc }: EngineUnderTest): void {
  const create = (options: StoreOptions = {}) => open(options);

  describe("apply and read", () => {
    test("a batch commits whole at one revision", async () => {
      const store = await create();
      const empty = store.openSnapshot();
      expect(commit(store, put("a", "1"), put("b", "2"), put("c", "3"))).toEqual({ revision: 1, deleted: 0 });
      const first = store.openSnapshot();
      expect(commit(store, del("a"), put("b", "22"), put("d", "4"))).toEqual({ revision: 2, deleted: 1 });

      const keys = ["a", "b", "c", "d"];
      expect(empty.revision).toBe(0);
      expect(empty.read(keys).map(text)).toEqual([undefined, undefined, undefined, undefined]);
      expect(first.revision).toBe(1);
      expect(first.read(keys).map(text)).toEqual(["1", "2", "3", undefined]);
      expect(readText(store, keys)).toEqual([undefined, "22", "3", "4"]);
      expect(store.revision).toBe(2);
    });

    test("a missing key reads undefined", async () => {
      const store = await create();
      expect(store.read(["nope"])).toEqual([undefined]);
      commit(store, put("a", "1"));
      expect(store.read(["nope", "a"]).map(text)).toEqual([undefined, "1"]);
    });

    test("an empty value is present and empty", async () => {
      const store = await create();
      commit(store, put("e", ""));
      const [value] = store.read(["e"]);
      expect(value).toBeInstanceOf(Uint8Array);
      expect(value!.byteLength).toBe(0);
      expect(store.stats()).toMatchObject({ keys: 1, valueBytes: 0 });
    });

    test("a delete writes a tombstone; deleting a missing key writes no version", async () => {
      const store = await create();
      commit(store, put("a", "1"));
      const reader = store.openSnapshot(); // keeps the versions readable, so that they can be counted
      expect(commit(store, del("a"))).toEqual({ revision: 2, deleted: 1 });
      expect(store.read(["a"])).toEqual([undefined]);
      expect(store.stats()).toMatchObject({ keys: 0, versions: 2 });

      // The revision still advances: the batch committed, it just changed nothing.
      expect(commit(store, del("a"), del("never"))).toEqual({ revision: 3, deleted: 0 });
      expect(store.stats()).toMatchObject({ revision: 3, keys: 0, versions: 2 });
      reader.release();
    });

    test.if(countsGc)("with no snapshot open, a write drops what it shadows at once: no GC work is left", async () => {
      const store = await create();
      commit(store, put("a", "1"), put("b", "1"));
      commit(store, put("a", "2"), del("b"));
      expect(store.stats()).toMatchObject({ keys: 1, versions: 1, gcVersionsCollected: 3 });
      expect(store.collectGarbage(10)).toEqual({ keysVisited: 0, versionsCollected: 0, more: false });
    });

    test("stats keys and valueBytes stay exact across overwrites and deletes", async () => {
      const store = await create();
      const expectLive = (keys: number, valueBytes: number) =>
        expect(store.stats()).toMatchObject({ keys, valueBytes });

      commit(store, put("a", "xx"), put("b", "yyy"));
      expectLive(2, 5);
      commit(store, put("a", "xxxxxx")); // longer
      expectLive(2, 9);
      commit(store, put("b", "y")); // shorter
      expectLive(2, 7);
      commit(store, put("a", "")); // shorter, to empty
      expectLive(2, 1);
      commit(store, del("missing"), del("b"));
      expectLive(1, 0);
      commit(store, del("b"));
      expectLive(1, 0);
      commit(store, put("b", "zzzz")); // re-set after delete
      expectLive(2, 4);
      collectAll(store);
      expectLive(2, 4);
    });

    test("a snapshot reads its revision while 1000 later writes commit", async () => {
      const store = await create();
      commit(store, put("a", "before"), put("b", "before"));
      const snapshot = store.openSnapshot();
      for (let i = 0; i < 1_000; i++) {
        commit(store, put("a", `after ${i}`), i % 2 === 0 ? del("b") : put("b", `after ${i}`), put(`new${i}`, "x"));
        if (i % 100 === 0) collectAll(store, 7);
      }
      expect(snapshot.revision).toBe(1);
      expect(snapshot.read(["a", "b", "new0", "new999"]).map(text)).toEqual(["before", "before", undefined, undefined]);
      expect(readText(store, ["a", "b", "new999"])).toEqual(["after 999", "after 999", "x"]);
    });

    test("reads above the current revision or below the compacted revision throw; a snapshot still reads what it pinned", async () => {
      const store = await create({ historyRevisions: 1 });
      commit(store, put("a", "1"));
      commit(store, put("a", "2"));
      const snapshot = store.openSnapshot();
      commit(store, put("a", "3"));
      commit(store, put("a", "4"));

      expectHomeKvError(() => store.read(["a"], 5), "E_FUTURE_REVISION");
      expectHomeKvError(() => store.read(["a"], 2), "E_COMPACTED");
      expect([3, 4].map((revision) => text(store.read(["a"], revision)[0]))).toEqual(["3", "4"]);
      expect(text(snapshot.read(["a"])[0])).toBe("2");

      snapshot.release();
      expectHomeKvError(() => snapshot.read(["a"]), "E_UNAVAILABLE");
      expect(readText(store, ["a"], 4)).toEqual(["4"]);
    });

    test("apply asserts a revision above the current one (gaps allowed) and distinct keys", async () => {
      const store = await create({ historyRevisions: 100 });
      expect(() => store.apply({ revision: 0, ops: [put("a", "1")] })).toThrow(AssertionError);
      expect(() => store.apply({ revision: 1.5, ops: [put("a", "1")] })).toThrow(AssertionError);
      commit(store, put("a", "1"));
      expect(() => store.apply({ revision: 1, ops: [put("a", "2")] })).toThrow(AssertionError);
      expect(() => store.apply({ revision: 2, ops: [put("b", "1"), del("b")] })).toThrow(AssertionError);
      expect(store.revision).toBe(1);
      store.apply({ revision: 40, ops: [put("a", "2")] });
      expect(store.revision).toBe(40);
      expect(() => store.apply({ revision: 39, ops: [put("a", "3")] })).toThrow(AssertionError);
      expect(readText(store, ["a"], 39)).toEqual(["1"]);
    });
  });

  describe.if(countsGc)("garbage collection", () => {
    test("never drops a version an open snapshot can see, and drops it once released", async () => {
      const store = await create();
      commit(store, put("k", "v1"));
      const atV1 = store.openSnapshot();
      commit(store, put("k", "v2"));
      const atV2 = store.openSnapshot();
      commit(store, del("k"));
      expect(store.stats().versions).toBe(3);

      collectAll(store);
      expect(store.stats().versions).toBe(3);
      expect(atV1.read(["k"]).map(text)).toEqual(["v1"]);

      atV1.release();
      collectAll(store);
      expect(store.stats()).toMatchObject({ versions: 2, gcFloor: 2 });
      expect(atV2.read(["k"]).map(text)).toEqual(["v2"]);

      atV2.release();
      collectAll(store);
      expect(store.stats()).toMatchObject({ versions: 0, keys: 0, gcVersionsCollected: 3, openSnapshots: 0 });
      expect(store.read(["k"])).toEqual([undefined]);
    });

    test("a slice visits at most maxKeys keys", async () => {
      const store = await create();
      const keys = keyRange(25);
      commit(store, ...keys.map((k) => put(k, "old")));
      const reader = store.openSnapshot();
      commit(store, ...keys.map((k) => put(k, "new")));
      reader.release();

      const slices = collectAll(store, 10);
      expect(slices.map((s) => s.keysVisited)).toEqual([10, 10, 5]);
      expect(slices.map((s) => s.more)).toEqual([true, true, false]);
      expect(store.stats().versions).toBe(25);
    });

    test("a slice's work is bounded by its budget (keys, and four versions per key): long chains spread over slices", async () => {
      const store = await create();
      const keys = keyRange(20);
      commit(store, ...keys.map((k) => put(k, "v0")));
      const snapshot = store.openSnapshot();
      for (let round = 1; round <= 30; round++) commit(store, ...keys.map((k) => put(k, `v${round}`)));
      snapshot.release();
      const slices = collectAll(store, 10);
      // 30 old versions a key. A slice stops at 10 keys or once past 40 versions; the key that
      // crosses the line adds what it drops (30 at most). An engine may drop a key's old versions
      // at its first queue entry (the rest find nothing) or one at each: either way the work spreads.
      for (const slice of slices) {
        expect(slice.keysVisited).toBeLessThanOrEqual(10);
        expect(slice.versionsCollected).toBeLessThan(40 + 30);
      }
      expect(slices.filter((s) => s.versionsCollected > 0).length).toBeGreaterThanOrEqual(10);
      expect(store.stats().versions).toBe(20);
    });

    test("while a long-lived snapshot holds the floor, GC does no work at all (it waits, never spins)", async () => {
      const store = await create();
      const keys = keyRange(30);
      commit(store, ...keys.map((k) => put(k, "old")));
      const snapshot = store.openSnapshot();
      commit(store, ...keys.map((k) => put(k, "new")));
      commit(store, put("k0", "newer"));

      for (let i = 0; i < 5; i++) {
        expect(store.collectGarbage(8)).toEqual({ keysVisited: 0, versionsCollected: 0, more: false });
      }
      expect(store.stats().versions).toBe(61);

      snapshot.release();
      expect(store.collectGarbage(8).more).toBe(true);
      collectAll(store, 8);
      expect(store.stats().versions).toBe(30);
    });
  });

  describe.if(countsGc)("through createDatabase", () => {
    test("after settleGc with no snapshot open, every live key has exactly one version", async () => {
      const db = createDatabase({ engine, gcSliceKeysMax: 3 });
      const keys = keyRange(20);
      const reader = db.openSnapshot(); // writes under a snapshot leave their garbage to GC
      await db.write(keys.map((k) => put(k, "first")));
      await db.write(keys.map((k) => put(k, "second, longer")));
      await db.write(keys.filter((_, i) => i % 3 === 0).map(del));
      await db.write(keys.filter((_, i) => i % 6 === 0).map((k) => put(k, "back")));
      await db.write([del("missing")]);
      expect(db.stats().versions).toBeGreaterThan(db.stats().keys);

      reader.release();
      await db.settleGc();
      const stats = db.stats();
      expect(stats.keys).toBe(20 - 7 + 4);
      expect(stats.versions).toBe(stats.keys);
      await db.close();
    });

    test("settleGc with gcSliceKeysMax 10 over 1000 dirty keys spans many event-loop turns", async () => {
      const db = createDatabase({ engine, gcSliceKeysMax: 10 });
      const keys = keyRange(1_000);
      const reader = db.openSnapshot();
      await db.write(keys.map((k) => put(k, "v")));
      await db.write(keys.map(del));
      reader.release();

      let turns = 0;
      let settled = false;
      const tick = () => {
        if (settled) return;
        turns++;
        setImmediate(tick);
      };
      setImmediate(tick);
      await db.settleGc();
      settled = true;

      expect(turns).toBeGreaterThanOrEqual(90);
      expect(db.stats()).toMatchObject({ keys: 0, versions: 0 });
      await db.close();
    });

    test("the GC scheduler runs one bounded slice per deferred turn", async () => {
      const store = await create();
      const keys = keyRange(1_000);
      commit(store, ...keys.map((k) => put(k, "v")));
      const reader = store.openSnapshot();
      commit(store, ...keys.map((k) => put(k, "w")));
      reader.release();

      const visited: number[] = [];
      const collect = store.collectGarbage.bind(store);
      store.collectGarbage = (maxKeys) => {
        const slice = collect(maxKeys);
        visited.push(slice.keysVisited);
        return slice;
      };
      let deferred = 0;
      const gc = createGcScheduler(store, {
        sliceKeysMax: 10,
        defer: (run) => {
          deferred++;
          setImmediate(run);
        },
      });

      await gc.drain();
      expect(deferred).toBe(visited.length);
      expect(visited.length).toBeGreaterThanOrEqual(100);
      expect(Math.max(...visited)).toBe(10);
      expect(visited.reduce((a, b) => a + b, 0)).toBe(1_000);
      expect(store.stats().versions).toBe(1_000);
      gc.stop();
    });
  });

  test("valueBytes measures each key's value at a revision as readRecords would read it, without reading it", async () => {
    const store = await create({ historyRevisions: 10 });
    commit(store, put("a", "xx"), put("b", "yyyy"));
    commit(store, put("a", "zzzzzz"), del("b"));
    const keys = ["a", "b", "missing", "a"];
    for (const revision of [1, 2]) {
      expect(store.valueBytes(keys, revision)).toEqual(
        store.readRecords(keys, revision).map((r) => r.value?.byteLength ?? 0),
      );
    }
    expect(store.valueBytes(keys)).toEqual([6, 0, 0, 6]);
    expectHomeKvError(() => store.valueBytes(keys, 3), "E_FUTURE_REVISION");
  });
}

import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../src/errors.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { loadNewestCheckpoint } from "../../src/storage/checkpoint/checkpoint-reader.ts";
import { writeCheckpoint } from "../../src/storage/checkpoint/checkpoint-writer.ts";
import { openFlsmEngine } from "../../src/storage/flsm/disk-engine.ts";
import { createFlsmStore } from "../../src/storage/flsm/flsm-store.ts";
import { LateWrites } from "../../src/storage/mvcc/late-writes.ts";
import { createMvccStore, type MvccStore, type StoreOptions } from "../../src/storage/mvcc/store.ts";
import type { KeyRecord, WriteOp } from "../../src/storage/ops.ts";
import { bytes, text } from "../helpers/bytes.ts";
import { outcome } from "./flsm/store-model.ts";

/**
 * Writes committed late (WriteView.applyLate): a Percolator secondary committed at its
 * transaction's commit timestamp C after the partition's revision went past it. Named cases on
 * every engine; the model test of gapped revisions mixes them with everything else.
 *
 *   rev 10  put k=old            k: [10:old]
 *   rev 20  put x                (another transaction's key; k is locked from 15 on)
 *   rev 50  put y                store at 50
 *   late 30 put k=new            k: [10:old, 30:new]; the store stays at 50
 *   read k at 29 → old, at 30 → new, at 50 → new
 */

const put = (key: string, value: string, expiresAtMs?: number): WriteOp => ({
  key,
  value: bytes(value),
  ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
});
const del = (key: string): WriteOp => ({ key, value: null });
const readText = (store: MvccStore, keys: string[], revision?: number) => store.read(keys, revision).map(text);

interface Engine {
  name: string;
  open(options: StoreOptions): Promise<MvccStore>;
}

const ENGINES: Engine[] = [
  { name: "memory", open: async (options) => createMvccStore(options) },
  { name: "memory, rings of 2", open: async (options) => createMvccStore({ ...options, tuning: { ringMin: 2 } }) },
  { name: "flsm in memory", open: async (options) => createFlsmStore(options) },
  {
    name: "flsm on disk, 1-byte memtable",
    open: async (storeOptions) =>
      (await openFlsmEngine({ fs: new MemoryFileSystem(), dir: "/flsm", memtableBytes: 1, storeOptions })).store,
  },
];

/** The worked example's store before its late commit: k at 10, x at 20, y at 50. */
async function example(engine: Engine, options: StoreOptions = {}): Promise<MvccStore> {
  const store = await engine.open({ historyRevisions: Number.POSITIVE_INFINITY, ...options });
  store.apply({ revision: 10, ops: [put("k", "old")] });
  store.apply({ revision: 20, ops: [put("x", "x")] });
  store.apply({ revision: 50, ops: [put("y", "y")] });
  return store;
}

for (const engine of ENGINES) {
  describe(`late commits, ${engine.name}`, () => {
    test("the worked example: reads at or above C see the version, below it do not; the revision stays", async () => {
      const store = await example(engine);
      expect(store.applyLate({ revision: 30, ops: [put("k", "new")] })).toEqual({ revision: 30, deleted: 0 });
      expect(store.revision).toBe(50);
      expect(readText(store, ["k"], 29)).toEqual(["old"]);
      expect(readText(store, ["k"], 30)).toEqual(["new"]);
      expect(store.readRecords(["k"])).toEqual([
        { key: "k", value: bytes("new"), modRevision: 30, createRevision: 10, version: 2 },
      ]);
      expect(store.scan({ limit: 10, revision: 40 }).records.map((record) => record.key)).toEqual(["k", "x"]);
    });

    test("a late delete, and a late put of a key that did not exist", async () => {
      const store = await example(engine);
      expect(store.applyLate({ revision: 30, ops: [del("k"), put("n", "new"), del("missing")] })).toEqual({
        revision: 30,
        deleted: 1,
      });
      expect(readText(store, ["k", "n", "missing"], 29)).toEqual(["old", undefined, undefined]);
      expect(store.readRecords(["k", "n"], 30)).toEqual([
        { key: "k", value: undefined, modRevision: 0, createRevision: 0, version: 0 },
        { key: "n", value: bytes("new"), modRevision: 30, createRevision: 30, version: 1 },
      ]);
    });

    test("refused, with nothing applied: a key with a version at or above C, a tombstone too, or C compacted", async () => {
      const store = await example(engine, { historyRevisions: 45 }); // compacted at 50 − 45 = 5
      store.apply({ revision: 60, ops: [del("y")] });
      const before = store.readRecords(["k", "x", "y", "fresh"]);
      // x has a version at 20 (at C), y a tombstone at 60 (above it); "fresh" would be fine alone.
      expect(outcome(() => store.applyLate({ revision: 20, ops: [put("fresh", "f"), put("x", "x2")] }))).toEqual({
        code: "E_INVALID",
      });
      expect(outcome(() => store.applyLate({ revision: 55, ops: [put("fresh", "f"), put("y", "y2")] }))).toEqual({
        code: "E_INVALID",
      });
      store.apply({ revision: 70, ops: [{ key: "z", value: bytes("z") }] }); // compacted at 70 − 45 = 25
      expect(store.compactedRevision).toBe(25);
      expect(outcome(() => store.applyLate({ revision: 25, ops: [put("fresh", "f")] }))).toEqual({
        code: "E_COMPACTED",
      });
      expect(store.readRecords(["k", "x", "y", "fresh"])).toEqual(before);
      expect(store.applyLate({ revision: 26, ops: [put("fresh", "f")] })).toEqual({ revision: 26, deleted: 0 });
      // Above the current revision is apply's, and an assertion here (a caller's mistake).
      expect(() => store.applyLate({ revision: 71, ops: [put("later", "l")] })).toThrow(AssertionError);
    });

    test("snapshots pinned at or above C before the commit see it once it is in; those below never do", async () => {
      const store = await example(engine);
      store.apply({ revision: 51, ops: [put("x", "x2")] }); // x has history under the snapshots
      const below = store.openSnapshot(); // at 51: the store's revision
      expect(below.revision).toBe(51);
      store.apply({ revision: 60, ops: [put("y", "y2")] });
      expect(below.read(["k"]).map(text)).toEqual(["old"]);
      store.applyLate({ revision: 55, ops: [put("k", "new")] });
      expect(below.read(["k"]).map(text)).toEqual(["old"]); // 51 < 55
      const above = store.openSnapshot(); // at 60
      store.applyLate({ revision: 58, ops: [put("n", "new")] });
      expect(above.read(["k", "n"]).map(text)).toEqual(["new", "new"]);
      expect(above.scan({ limit: 10 }).records.map((record) => record.key)).toEqual(["k", "n", "x", "y"]);
      below.release();
      above.release();
    });

    test("changes after a revision below C include the late change; watchers get no event", async () => {
      const events: number[] = [];
      const store = await example(engine, { onEvents: (revision) => events.push(revision) });
      expect(events).toEqual([10, 20, 50]);
      store.applyLate({ revision: 30, ops: [put("k", "new")] });
      expect(events).toEqual([10, 20, 50]);
      const change = {
        key: "k",
        value: bytes("new"),
        revision: 30,
        previous: bytes("old"),
        createRevision: 10,
        version: 2,
      };
      expect(store.changes({ after: 29, limit: 10 })).toEqual({
        changes: [
          change,
          { key: "y", value: bytes("y"), revision: 50, previous: undefined, createRevision: 50, version: 1 },
        ],
        through: 50,
      });
      expect(store.changes({ after: 30, limit: 10 }).changes.map((c) => c.revision)).toEqual([50]);
      expect(store.changes({ after: 20, limit: 1 })).toEqual({ changes: [change], through: 30 });
    });

    test("a late put with a TTL is reported to expiry at C, and an expiry of the version at C deletes it", async () => {
      const expiries: [string, number, number][] = [];
      const store = await example(engine, { onExpiry: (key, revision, at) => expiries.push([key, revision, at]) });
      store.applyLate({ revision: 30, ops: [put("k", "new", 1_234)] });
      expect(expiries).toEqual([["k", 30, 1_234]]);
      expect(store.apply({ revision: 61, kind: "expire", keys: [{ key: "k", revision: 10 }] }).deleted).toBe(0);
      expect(store.apply({ revision: 62, kind: "expire", keys: [{ key: "k", revision: 30 }] }).deleted).toBe(1);
      expect(readText(store, ["k"], 61)).toEqual(["new"]);
      expect(readText(store, ["k"])).toEqual([undefined]);
    });

    test("GC keeps the version a late one shadows while a reader between them may see it, then drops it", async () => {
      const store = await example(engine, { historyRevisions: 25 }); // compacted at 25
      store.apply({ revision: 51, ops: [put("x", "x2")] }); // compacted at 26
      store.applyLate({ revision: 40, ops: [put("k", "new")] });
      while (store.collectGarbage(10).more);
      expect(readText(store, ["k", "x"], 26)).toEqual(["old", "x"]);
      expect(readText(store, ["k"], 40)).toEqual(["new"]);
      store.apply({ revision: 70, kind: "compact", compactTo: 45 }); // and the window: 70 − 25
      while (store.collectGarbage(10).more);
      expect(readText(store, ["k"], 45)).toEqual(["new"]);
      expect(store.readRecords(["k"])[0]).toMatchObject({ modRevision: 40, createRevision: 10, version: 2 });
      // A write over the late version shadows it as any other.
      store.apply({ revision: 90, ops: [put("k", "newer")] });
      expect(readText(store, ["k"], 89)).toEqual(["new"]);
    });

    test("a snapshot's dump leaves out what came late since it was pinned, and GC keeps what that shows", async () => {
      const store = await example(engine, { historyRevisions: 25 }); // compacted at 25
      const pinned = store.openSnapshot(); // at 50
      store.applyLate({ revision: 40, ops: [put("k", "new"), put("n", "n")] });
      store.apply({ revision: 70, ops: [put("z", "z")] }); // compacted at 45: past the late commit
      while (store.collectGarbage(10).more);
      const old = { revision: 10, value: bytes("old"), createRevision: 10, version: 1 };
      expect(pinned.chains({ limit: 1 })).toEqual([{ key: "k", versions: [old] }]);
      expect(pinned.chains({ after: "k", limit: 1 })).toEqual([
        { key: "x", versions: [{ revision: 20, value: bytes("x"), createRevision: 20, version: 1 }] },
      ]); // n, made by the late commit alone, is not in it: the page goes on to x
      expect(pinned.read(["k", "n"]).map(text)).toEqual(["new", "n"]); // reads see it (store-types.ts)
      pinned.release();
      while (store.collectGarbage(10).more);
      const newest = store.dumpChains({ limit: 10, revision: store.revision });
      expect(newest.find((chain) => chain.key === "k")!.versions.map((version) => version.revision)).toEqual([40]);
    });
  });
}

/** What a read of everything at `revision` returns: enough to compare two stores. */
const everything = (store: MvccStore, revision: number): KeyRecord[] => store.scan({ limit: 100, revision }).records;

describe("late versions survive", () => {
  test("a checkpoint holds the state at its pin though a late commit lands while it is copied", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdirp("/ckpt");
    const store = await example(ENGINES[0]!, { historyRevisions: 30 });
    const late = { revision: 30, ops: [put("k", "new"), put("n", "n")] };
    let landed = false;
    // The store as the checkpoint writer sees it: the late commit lands after the first slice.
    const source = {
      get compactedRevision() {
        return store.compactedRevision;
      },
      openSnapshot() {
        const snapshot = store.openSnapshot();
        return {
          ...snapshot,
          chains(options: { after?: string; limit: number }) {
            const slice = snapshot.chains(options);
            if (!landed) store.applyLate(late);
            landed = true;
            return slice;
          },
        };
      },
    };
    await writeCheckpoint({ fs, dir: "/ckpt", store: source, sliceKeysMax: 1 });
    expect(landed).toBe(true);
    const restored = createMvccStore({ historyRevisions: 30 });
    await loadNewestCheckpoint(fs, "/ckpt", (checkpoint) =>
      restored.restore(checkpoint.revision, checkpoint.compactedRevision, checkpoint.chains),
    );
    expect(readText(restored, ["k", "n"], 50)).toEqual(["old", undefined]);
    // The log after the checkpoint's position applies the commit again: taken, and the same as the store's.
    expect(restored.applyLate(late)).toEqual({ revision: 30, deleted: 0 });
    for (const revision of [29, 30, 50]) expect(everything(restored, revision)).toEqual(everything(store, revision));
  });

  test("the worked example of LateWrites", () => {
    const late = new LateWrites();
    expect(late.sequence).toBe(0); // snapshot A
    late.record("k", 30);
    expect(late.sequence).toBe(1); // snapshot B
    late.record("n", 40);
    expect(late.since(0)).toEqual(
      new Map([
        ["k", new Set([30])],
        ["n", new Set([40])],
      ]),
    );
    expect(late.since(1)).toEqual(new Map([["n", new Set([40])]]));
    expect(late.since(2)).toBeUndefined();
    late.clear();
    expect([late.sequence, late.since(0)]).toEqual([2, undefined]);
  });

  test("a checkpoint written and loaded (memory engine)", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdirp("/ckpt");
    const store = await example(ENGINES[0]!, { historyRevisions: 30 });
    store.applyLate({ revision: 30, ops: [put("k", "new"), put("n", "n")] });
    await writeCheckpoint({ fs, dir: "/ckpt", store, sliceKeysMax: 1 });
    const restored = createMvccStore({ historyRevisions: 30 });
    await loadNewestCheckpoint(fs, "/ckpt", (checkpoint) =>
      restored.restore(checkpoint.revision, checkpoint.compactedRevision, checkpoint.chains),
    );
    expect([restored.revision, restored.compactedRevision]).toEqual([50, 20]);
    for (const revision of [29, 30, 50]) expect(everything(restored, revision)).toEqual(everything(store, revision));
    expect(outcome(() => restored.applyLate({ revision: 30, ops: [put("k", "again")] }))).toEqual({
      code: "E_INVALID",
    });
  });

  test("a restart of the FLSM engine from its tables", async () => {
    const fs = new MemoryFileSystem();
    const options = { fs, dir: "/flsm", memtableBytes: 1 << 20, storeOptions: { historyRevisions: 100 } };
    const engine = await openFlsmEngine(options);
    const { store } = engine;
    store.apply({ revision: 10, ops: [put("k", "old")] });
    store.apply({ revision: 50, ops: [put("y", "y")] });
    store.applyLate({ revision: 30, ops: [put("k", "new")] });
    const expected = [29, 30, 50].map((revision) => everything(store, revision));
    await store.flushAll();
    await engine.close();
    const reopened = await openFlsmEngine(options);
    expect(reopened.store.revision).toBe(50);
    expect([29, 30, 50].map((revision) => everything(reopened.store, revision))).toEqual(expected);
    expect(readText(reopened.store, ["k"], 30)).toEqual(["new"]);
    await reopened.close();
  });
});

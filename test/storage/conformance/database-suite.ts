import { afterEach, describe, expect, test } from "bun:test";
import fc from "fast-check";
import { HomeKvError } from "../../../src/errors.ts";
import type { Database, StoreSettings } from "../../../src/storage/database.ts";
import type { TxnCommand, WriteOp } from "../../../src/storage/ops.ts";
import type { WatchBatch, WatchEnd } from "../../../src/storage/watch/watch-hub.ts";

/**
 * What every Database must do, whatever keeps its data (unstorage's driver tests are the model):
 * the same tests run against each implementation through a driver. Add an engine: add a driver
 * file beside this one.
 */
export interface DatabaseDriver {
  /** A new, empty database. */
  open(settings: StoreSettings): Promise<Database>;
  /** Closes `db` and opens the same data again; undefined when the database keeps nothing. */
  reopen?(db: Database, settings: StoreSettings): Promise<Database>;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const put = (key: string, value: string): WriteOp => ({ key, value: encoder.encode(value) });
const del = (key: string): WriteOp => ({ key, value: null });
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : decoder.decode(value));
const ALL_HISTORY: StoreSettings = { historyRevisions: Number.POSITIVE_INFINITY };

function values(db: Database, keys: readonly string[], revision?: number): (string | undefined)[] {
  return db.read(keys, revision).records.map((record) => text(record.value));
}

async function expectCode(promise: Promise<unknown> | (() => unknown), code: string): Promise<void> {
  try {
    await (typeof promise === "function" ? promise() : promise);
  } catch (error) {
    expect(error).toBeInstanceOf(HomeKvError);
    expect((error as HomeKvError).code as string).toBe(code);
    return;
  }
  throw new Error(`expected ${code}, but it succeeded`);
}

export function describeDatabaseConformance(name: string, driver: DatabaseDriver): void {
  describe(`Database conformance: ${name}`, () => {
    const opened: Database[] = [];
    const open = async (settings: StoreSettings = ALL_HISTORY) => {
      const db = await driver.open(settings);
      opened.push(db);
      return db;
    };
    afterEach(async () => {
      for (const db of opened.splice(0)) await db.close().catch(() => {});
    });

    test("an empty database is at revision 0 and every key is missing", async () => {
      const db = await open();
      expect(db.revision).toBe(0);
      expect(db.compactedRevision).toBe(0);
      expect(db.read(["a"]).records).toEqual([
        { key: "a", value: undefined, modRevision: 0, createRevision: 0, version: 0 },
      ]);
      expect(db.scan({ limit: 10, revision: 0 }).records).toEqual([]);
    });

    test("each batch commits at one new revision; a read at a revision sees every batch up to it whole", async () => {
      const db = await open();
      expect((await db.write([put("a", "1"), put("b", "1")])).revision).toBe(1);
      expect((await db.write([put("a", "2"), del("b"), put("c", "2")])).revision).toBe(2);
      expect(values(db, ["a", "b", "c"], 1)).toEqual(["1", "1", undefined]);
      expect(values(db, ["a", "b", "c"], 2)).toEqual(["2", undefined, "2"]);
      expect(values(db, ["a", "b", "c"])).toEqual(["2", undefined, "2"]);
      const [a] = db.read(["a"]).records;
      expect(a).toMatchObject({ modRevision: 2, createRevision: 1, version: 2 });
    });

    test("a delete counts only the keys that existed, and a deleted key starts a new life", async () => {
      const db = await open();
      await db.write([put("k", "v")]);
      expect((await db.write([del("k"), del("never")])).deleted).toBe(1);
      await db.write([put("k", "again")]);
      expect(db.read(["k"]).records[0]).toMatchObject({ createRevision: 3, version: 1, modRevision: 3 });
    });

    test("reads and compaction outside the retained history are refused with a code", async () => {
      const db = await open();
      for (let i = 1; i <= 5; i++) await db.write([put("k", String(i))]);
      await expectCode(db.compact(9), "E_FUTURE_REVISION");
      const compacted = await db.compact(3);
      expect(compacted).toEqual({ revision: 6, compactedRevision: 3 });
      expect(db.compactedRevision).toBe(3);
      await expectCode(db.compact(3), "E_COMPACTED");
      await expectCode(() => db.read(["k"], 2), "E_COMPACTED");
      expect(values(db, ["k"], 3)).toEqual(["3"]);
      // Refusals applied nothing.
      expect(db.revision).toBe(6);
    });

    test("a scan pages through a range in key order, forwards and backwards, at one revision", async () => {
      const db = await open();
      await db.write(["a", "b", "c", "d", "e"].map((key) => put(`s/${key}`, key)));
      await db.write([put("s/c", "changed"), del("s/d"), put("t/x", "outside")]);
      const keys = (page: { records: { key: string }[] }) => page.records.map((record) => record.key);
      const first = db.scan({ start: "s/", end: "s0", limit: 2, revision: 1 });
      expect(keys(first)).toEqual(["s/a", "s/b"]);
      const second = db.scan({ start: "s/", end: "s0", after: first.next!, limit: 10, revision: 1 });
      expect(keys(second)).toEqual(["s/c", "s/d", "s/e"]);
      expect(second.next).toBeUndefined();
      expect(keys(db.scan({ start: "s/", end: "s0", limit: 10, revision: 2, reverse: true }))).toEqual([
        "s/e",
        "s/c",
        "s/b",
        "s/a",
      ]);
    });

    test("readBytes measures a response (repeats included) without reading it", async () => {
      const db = await open();
      await db.write([put("ab", "12345")]);
      expect(db.readBytes(["ab", "ab", "missing"])).toBe(2 + 5 + 2 + 5 + 7);
    });

    test("a transaction takes the branch its compares pick; its gets see the writes before them", async () => {
      const db = await open();
      await db.write([put("n", "1")]);
      const txn = (expected: string): TxnCommand => ({
        compares: [{ key: "n", target: "value", op: "==", value: encoder.encode(expected) }],
        success: [put("n", "2"), { get: "n" }],
        failure: [{ get: "n" }],
      });
      const won = await db.txn(txn("1"));
      expect(won).toMatchObject({ succeeded: true, revision: 2 });
      expect(won.reads.map((record) => text(record.value))).toEqual(["2"]);
      const lost = await db.txn(txn("1"));
      expect(lost.succeeded).toBe(false);
      expect(lost.reads.map((record) => text(record.value))).toEqual(["2"]);
    });

    test("a read-only transaction commits nothing; a refused one applies nothing", async () => {
      const db = await open();
      await db.write([put("a", "xyz")]);
      const readOnly = await db.txn({ compares: [], success: [{ get: "a" }], failure: [] });
      expect(readOnly).toMatchObject({ succeeded: true, revision: 1 });
      expect(db.revision).toBe(1);
      const seen: number[] = [];
      const refuse = (bytes: number) => {
        seen.push(bytes);
        throw new HomeKvError("E_LIMIT", "too large");
      };
      const writing: TxnCommand = { compares: [], success: [put("a", "longer value"), { get: "a" }], failure: [] };
      await expectCode(db.txn(writing, { checkReadBytes: refuse }), "E_LIMIT");
      expect(seen).toEqual([1 + "longer value".length]);
      expect(db.revision).toBe(1);
      expect(values(db, ["a"])).toEqual(["xyz"]);
    });

    test("a snapshot keeps reading its revision while writes and compaction go on", async () => {
      const db = await open();
      await db.write([put("k", "old")]);
      const snapshot = db.openSnapshot();
      await db.write([put("k", "new")]);
      await db.compact(2);
      await db.settleGc();
      expect(text(snapshot.read(["k"])[0])).toBe("old");
      expect(snapshot.revision).toBe(1);
      snapshot.release();
      snapshot.release();
      expect(values(db, ["k"])).toEqual(["new"]);
    });

    test("watches: catch up from a past revision, then live, without a gap; closing the database ends them", async () => {
      const db = await open();
      await db.write([put("w/a", "1")]);
      await db.write([put("w/b", "2"), put("x", "outside")]);
      const ends: WatchEnd[] = [];
      const watcher = db.watches.watch(
        { start: "w/", end: "w0", startRevision: 1, prevValue: false },
        { wake: () => {}, end: (end) => ends.push(end) },
      );
      await db.write([del("w/a")]);
      const seen: string[] = [];
      const take = () => {
        for (let batch: WatchBatch | undefined = watcher.take(); batch; batch = watcher.take()) {
          for (const event of batch.events) seen.push(`${event.revision}:${event.type}:${event.key}`);
        }
      };
      take();
      expect(seen).toEqual(["1:put:w/a", "2:put:w/b", "3:delete:w/a"]);
      expect(db.watches.size).toBe(1);
      await db.close();
      expect(ends.map((end) => end.reason)).toEqual(["closed"]);
      expect(db.watches.size).toBe(0);
    });

    test("a watch from a compacted revision is refused with E_COMPACTED", async () => {
      const db = await open({ historyRevisions: 1 });
      for (let i = 0; i < 4; i++) await db.write([put("k", String(i))]);
      await expectCode(
        () => db.watches.watch({ start: "k", startRevision: 1, prevValue: false }, { wake: () => {}, end: () => {} }),
        "E_COMPACTED",
      );
    });

    test("TTL: a key whose deadline passed is deleted by a command of its own", async () => {
      let nowMs = 1_000;
      const timers: (() => void)[] = [];
      const db = await open({
        ...ALL_HISTORY,
        expiry: { now: () => nowMs, setTimer: (fire) => timers.push(fire), clearTimer: () => {} },
      });
      await db.write([{ ...put("ttl", "v"), expiresAtMs: 1_500 }, put("kept", "v")]);
      nowMs = 2_000;
      for (const fire of timers.splice(0)) fire();
      await pollUntil(() => db.revision === 2, "the expiry command to commit");
      expect(values(db, ["ttl", "kept"])).toEqual([undefined, "v"]);
    });

    test("matches a model of versioned maps over random batches (fast-check)", async () => {
      const keyArb = fc.constantFrom("a", "b", "c", "d");
      const opArb = fc.record({ key: keyArb, value: fc.option(fc.string({ maxLength: 3 }), { nil: null }) });
      await fc.assert(
        fc.asyncProperty(
          fc.array(fc.uniqueArray(opArb, { minLength: 1, maxLength: 4, selector: (op) => op.key }), { maxLength: 12 }),
          async (batches) => {
            const db = await open();
            const model: Map<string, string>[] = [new Map()];
            for (const batch of batches) {
              const next = new Map(model.at(-1));
              for (const op of batch) op.value === null ? next.delete(op.key) : next.set(op.key, op.value);
              model.push(next);
              await db.write(batch.map((op) => (op.value === null ? del(op.key) : put(op.key, op.value))));
            }
            expect(db.revision).toBe(batches.length);
            for (let revision = 0; revision <= batches.length; revision++) {
              const state = model[revision]!;
              expect(values(db, ["a", "b", "c", "d"], revision)).toEqual(["a", "b", "c", "d"].map((k) => state.get(k)));
              const live = db.scan({ limit: 10, revision }).records.map((record) => record.key);
              expect(live).toEqual([...state.keys()].sort());
            }
            await db.close();
          },
        ),
        { numRuns: 40 },
      );
      // Forty databases opened and closed (a three-member group each, replicated): a loaded machine needs more than 5 s.
    }, 30_000);

    if (driver.reopen) {
      const reopen = driver.reopen;
      test("what was committed is there after a reopen: values, revisions, compaction, TTL deadlines", async () => {
        const db = await open({ historyRevisions: Number.POSITIVE_INFINITY });
        await db.write([put("a", "1"), put("b", "1")]);
        await db.write([put("a", "2"), del("b")]);
        await db.write([{ ...put("t", "v"), expiresAtMs: Date.now() + 3_600_000 }]);
        await db.compact(2);
        const again = await reopen(db, ALL_HISTORY);
        opened.push(again);
        expect(again.revision).toBe(4);
        expect(again.compactedRevision).toBe(2);
        expect(values(again, ["a", "b", "t"])).toEqual(["2", undefined, "v"]);
        expect(values(again, ["a", "b"], 2)).toEqual(["2", undefined]);
        expect(again.read(["t"]).records[0]!.expiresAtMs).toBeGreaterThan(Date.now());
        expect((await again.write([put("c", "3")])).revision).toBe(5);
      });
    }
  });
}

/** Polls a condition the database reaches by itself (a timer's command committing); bounded. */
async function pollUntil(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!condition()) {
    if (performance.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setImmediate(resolve));
  }
}

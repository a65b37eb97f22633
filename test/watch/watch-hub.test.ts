import { describe, expect, test } from "bun:test";
import { HomeKvError } from "../../src/errors.ts";
import { mulberry32 } from "../../src/random.ts";
import { prefixEnd } from "../../src/storage/mvcc/key-order.ts";
import { createMvccStore, type MvccStore } from "../../src/storage/mvcc/store.ts";
import type { WriteOp } from "../../src/storage/ops.ts";
import {
  createWatchHub,
  type WatchBatch,
  type WatchEnd,
  type Watcher,
  type WatchHub,
  type WatchHubOptions,
  type WatchOptions,
} from "../../src/storage/watch/watch-hub.ts";
import { bytes, text } from "../helpers/bytes.ts";

const put = (key: string, value: string): WriteOp => ({ key, value: bytes(value) });
const del = (key: string): WriteOp => ({ key, value: null });

/**
 * A store with its hub wired as serve wires them: hub first, its publish as the store's onEvents,
 * events made only while it is listening.
 */
function setup(options: { historyRevisions?: number; hub?: WatchHubOptions } = {}) {
  const hub = createWatchHub(options.hub);
  const store = createMvccStore({
    historyRevisions: options.historyRevisions ?? Infinity,
    onEvents: hub.publish,
    eventsWanted: hub.listening,
  });
  hub.attach(store);
  const commit = (...ops: WriteOp[]) => store.apply({ revision: store.revision + 1, ops }).revision;
  return { hub, store, commit };
}

/** A sink that records what the hub tells it. */
function recorder() {
  const log = { wakes: 0, ends: [] as WatchEnd[] };
  return { log, sink: { wake: () => log.wakes++, end: (end: WatchEnd) => log.ends.push(end) } };
}

const single = (key: string) => ({ start: key, end: `${key}\0` });
const prefix = (p: string) => ({ start: p, end: prefixEnd(p) });

function open(hub: WatchHub, range: { start: string; end?: string }, extra: Partial<WatchOptions> = {}) {
  const { log, sink } = recorder();
  const watcher = hub.watch({ ...range, startRevision: 0, prevValue: false, ...extra }, sink);
  return { watcher, log };
}

/** Takes every waiting batch (bounded: a watcher that never runs dry fails the test). */
function drain(watcher: Watcher): WatchBatch[] {
  const out: WatchBatch[] = [];
  for (let i = 0; i < 100_000; i++) {
    const batch = watcher.take();
    if (batch === undefined) return out;
    out.push(batch);
  }
  throw new Error("the watcher never ran dry");
}

const flat = (batches: WatchBatch[]) =>
  batches.flatMap((b) => b.events.map((e) => `${e.revision}:${e.type}:${e.key}${e.value ? `=${text(e.value)}` : ""}`));

describe("filtering", () => {
  test("a key, a prefix and a range each see only their keys; one batch per revision, in key order", () => {
    const { hub, commit } = setup();
    const key = open(hub, single("user/b"));
    const pre = open(hub, prefix("user/"));
    const range = open(hub, { start: "b", end: "user/b" });
    commit(put("user/b", "1"), put("user/a", "2"), put("user/bb", "3"), put("userx", "4"), put("c", "5"));
    commit(del("user/b"));
    commit(put("a", "0"));
    expect(flat(drain(key.watcher))).toEqual(["1:put:user/b=1", "2:delete:user/b"]);
    expect(flat(drain(pre.watcher))).toEqual([
      "1:put:user/a=2",
      "1:put:user/b=1",
      "1:put:user/bb=3",
      "2:delete:user/b",
    ]);
    expect(flat(drain(range.watcher))).toEqual(["1:put:c=5", "1:put:user/a=2"]);
    expect(hub.size).toBe(3);
  });

  test("the batch of a revision holds its events in key order, with counters and previous values when asked", () => {
    const { hub, commit } = setup();
    commit(put("p/b", "old"));
    const withPrev = open(hub, prefix("p/"), { prevValue: true });
    const without = open(hub, prefix("p/"));
    commit(put("p/c", "3"), put("p/b", "new"), put("p/a", "1"));
    const [batch] = drain(withPrev.watcher);
    expect(batch!.events.map((e) => e.key)).toEqual(["p/a", "p/b", "p/c"]);
    const b = batch!.events[1]!;
    expect([text(b.value), text(b.prevValue), b.createRevision, b.version]).toEqual(["new", "old", 1, 2]);
    expect("prevValue" in batch!.events[0]! && batch!.events[0]!.prevValue).toBeUndefined();
    expect(drain(without.watcher)[0]!.events.every((e) => !("prevValue" in e))).toBe(true);
  });

  test("a watch from revision 0 starts at the next commit; one from a future revision waits for it", () => {
    const { hub, commit } = setup();
    commit(put("k", "1"));
    const now = open(hub, single("k"));
    const later = open(hub, single("k"), { startRevision: 4 });
    commit(put("k", "2"));
    commit(put("k", "3"));
    commit(put("k", "4"));
    expect(flat(drain(now.watcher))).toEqual(["2:put:k=2", "3:put:k=3", "4:put:k=4"]);
    expect(flat(drain(later.watcher))).toEqual(["4:put:k=4"]);
  });

  test("the sink is woken when its queue stops being empty, not for every batch", () => {
    const { hub, commit } = setup();
    const { watcher, log } = open(hub, prefix("k"));
    commit(put("k1", "1"));
    commit(put("k2", "2"));
    expect(log.wakes).toBe(1);
    drain(watcher);
    commit(put("other", "x"));
    expect(log.wakes).toBe(1);
    commit(put("k3", "3"));
    expect(log.wakes).toBe(2);
  });

  test("close unregisters: no wake, no event, size drops", () => {
    const { hub, commit } = setup();
    const { watcher, log } = open(hub, single("k"));
    watcher.close();
    watcher.close();
    commit(put("k", "1"));
    expect([log.wakes, hub.size, watcher.take()]).toEqual([0, 0, undefined]);
  });
});

describe("listening: events are made only for live watchers", () => {
  test("no watcher, or one catching up: not listening, and the store makes no events; a live one: listening", () => {
    const { hub, store, commit } = setup();
    let published = 0;
    const counted = createMvccStore({
      historyRevisions: Infinity,
      onEvents: () => published++,
      eventsWanted: hub.listening,
    });
    const both = (...ops: WriteOp[]) => {
      counted.apply({ revision: counted.revision + 1, ops });
      return commit(...ops);
    };
    expect(hub.listening()).toBe(false);
    both(put("a", "1"));
    expect(published).toBe(0);
    // From a past revision: it reads the store's history until it has caught up.
    const catching = open(hub, single("a"), { startRevision: 1 });
    expect(hub.listening()).toBe(false);
    both(put("a", "2"));
    expect(published).toBe(0);
    // Caught up by its take: live from here on, and the next command's events are made.
    expect(flat(drain(catching.watcher))).toEqual(["1:put:a=1", "2:put:a=2"]);
    expect(hub.listening()).toBe(true);
    both(put("a", "3"));
    expect(published).toBe(1);
    expect(flat(drain(catching.watcher))).toEqual(["3:put:a=3"]);
    catching.watcher.close();
    expect(hub.listening()).toBe(false);
    expect(store.revision).toBe(3);
  });
});

describe("catch-up, then live", () => {
  test("history from the start revision, then live events, with previous values from the chain", () => {
    const { hub, commit } = setup();
    commit(put("k", "1")); // 1
    commit(put("k", "2"), put("j", "x")); // 2
    commit(del("k")); // 3
    const { watcher } = open(hub, single("k"), { startRevision: 2, prevValue: true });
    commit(put("k", "4")); // 4: arrives while the watcher has not taken anything
    const batches = drain(watcher);
    expect(flat(batches)).toEqual(["2:put:k=2", "3:delete:k", "4:put:k=4"]);
    expect(batches.map((b) => text(b.events[0]!.prevValue))).toEqual(["1", "2", undefined]);
    expect(batches.map((b) => [b.events[0]!.createRevision, b.events[0]!.version])).toEqual([
      [1, 2],
      [0, 0],
      [4, 1],
    ]);
  });

  test("random interleavings of writes and takes: every change from the start revision exactly once, in order", () => {
    for (let seed = 1; seed <= 40; seed++) {
      const random = mulberry32(seed);
      const pageEvents = 1 + Math.floor(random() * 5);
      const { hub, store, commit } = setup({ hub: { catchUpPageEventsMax: pageEvents } });
      const keys = ["a", "b", "c", "d", "e"];
      const expected: string[] = [];
      const write = () => {
        const chosen = keys.filter(() => random() < 0.4);
        if (chosen.length === 0) chosen.push("a");
        const ops = chosen.map((k) => (random() < 0.2 ? del(k) : put(k, String(store.revision + 1))));
        const revision = store.revision + 1;
        commit(...ops);
        return { revision, ops };
      };
      const log: { revision: number; ops: WriteOp[] }[] = [];
      for (let i = 0; i < 20; i++) log.push(write());
      const startRevision = 1 + Math.floor(random() * store.revision);
      const { watcher } = open(hub, { start: "b", end: "e" }, { startRevision });
      const got: WatchBatch[] = [];
      for (let step = 0; step < 200; step++) {
        if (random() < 0.5) log.push(write());
        else {
          const batch = watcher.take();
          if (batch) got.push(batch);
        }
      }
      got.push(...drain(watcher));
      // What a watcher of [b, e) from startRevision must see: derived from the writes themselves.
      const existed = new Set<string>();
      for (const { revision, ops } of log) {
        const inRange = ops.filter((op) => op.key >= "b" && op.key < "e" && (op.value !== null || existed.has(op.key)));
        for (const op of ops) {
          if (op.value === null) existed.delete(op.key);
          else existed.add(op.key);
        }
        if (revision < startRevision) continue;
        for (const op of [...inRange].sort((x, y) => (x.key < y.key ? -1 : 1))) {
          expected.push(
            `${revision}:${op.value === null ? "delete" : "put"}:${op.key}${op.value ? `=${text(op.value)}` : ""}`,
          );
        }
      }
      expect({ seed, events: flat(got) }).toEqual({ seed, events: expected });
      const revisions = got.map((b) => b.revision);
      expect(revisions).toEqual([...new Set(revisions)].sort((x, y) => x - y));
    }
  });

  test("a catch-up page holds whole revisions and is read only once the previous page was taken", () => {
    const { hub, store, commit } = setup({ hub: { catchUpPageEventsMax: 2 } });
    commit(put("p/a", "1"), put("p/b", "1"), put("p/c", "1")); // 3 events in one revision
    commit(put("p/a", "2"));
    commit(put("p/b", "3"));
    const { watcher } = open(hub, prefix("p/"), { startRevision: 1 });
    expect(watcher.pendingEvents).toBe(0); // nothing is read before the client asks
    expect(watcher.take()!.events.length).toBe(3);
    expect(watcher.resumeRevision).toBe(2);
    expect(watcher.take()!.revision).toBe(2);
    expect(watcher.take()!.revision).toBe(3);
    expect(watcher.take()).toBeUndefined();
    expect(watcher.resumeRevision).toBe(store.revision + 1);
  });
});

describe("compaction", () => {
  test("a start revision whose previous state is compacted is E_COMPACTED naming the oldest start revision", () => {
    const { hub, store, commit } = setup({ historyRevisions: 5 });
    for (let i = 1; i <= 20; i++) commit(put(`k${i % 3}`, String(i)));
    expect(store.compactedRevision).toBe(15);
    for (const startRevision of [1, 10, 15]) {
      let error: unknown;
      try {
        open(hub, prefix("k"), { startRevision });
      } catch (e) {
        error = e;
      }
      expect(error).toBeInstanceOf(HomeKvError);
      expect((error as HomeKvError).code).toBe("E_COMPACTED");
      expect((error as HomeKvError).message).toContain("oldest revision a watch can start from is 16");
    }
    expect(hub.size).toBe(0);
    const { watcher } = open(hub, prefix("k"), { startRevision: 16, prevValue: true });
    const batches = drain(watcher);
    expect(batches.map((b) => b.revision)).toEqual([16, 17, 18, 19, 20]);
    // The previous value of the change at 16 was written at 13: still retained, since 15 is readable.
    expect(text(batches[0]!.events[0]!.prevValue)).toBe("13");
  });

  test("a delete right after the compacted revision is still replayed, with its previous value", () => {
    const { hub, store, commit } = setup({ historyRevisions: 2 });
    commit(put("k", "1")); // 1
    commit(put("x", "1")); // 2
    commit(del("k")); // 3
    commit(put("x", "2")); // 4: compacted is now 2
    expect(store.compactedRevision).toBe(2);
    const { watcher } = open(hub, single("k"), { startRevision: 3, prevValue: true });
    const [batch] = drain(watcher);
    expect(batch!.events.map((e) => [e.type, e.revision, text(e.prevValue)])).toEqual([["delete", 3, "1"]]);
  });

  test("compaction overtaking a catch-up ends the watcher (compacted) instead of skipping changes", () => {
    const { hub, commit } = setup({ historyRevisions: 6, hub: { catchUpPageEventsMax: 1 } });
    for (let i = 1; i <= 6; i++) commit(put("k", String(i)));
    const { watcher, log } = open(hub, single("k"), { startRevision: 2 });
    expect(watcher.take()!.revision).toBe(2);
    for (let i = 0; i < 5; i++) commit(put("k", "later"));
    expect(watcher.take()).toBeUndefined();
    expect(log.ends.map((e) => [e.reason, e.resumeRevision])).toEqual([["compacted", 3]]);
    expect(log.ends[0]!.message).toContain("compacted");
    expect(hub.size).toBe(0);
  });
});

describe("bounded queue", () => {
  test("a watcher that does not take is ended past its event limit, with the first revision it did not take", () => {
    const { hub, store, commit } = setup({ hub: { queueEventsMax: 10 } });
    const slow = open(hub, prefix("k"));
    const fast = open(hub, prefix("k"));
    const fastSeen: number[] = [];
    commit(put("k0", "0"));
    expect(slow.watcher.take()!.revision).toBe(1); // it took one, then stopped taking
    for (let i = 1; i <= 30; i++) {
      commit(put(`k${i}`, "v"), put(`k${i}x`, "v"));
      fastSeen.push(...drain(fast.watcher).map((b) => b.revision));
    }
    expect(slow.log.ends).toHaveLength(1);
    const end = slow.log.ends[0]!;
    expect(end.reason).toBe("overflow");
    expect(end.resumeRevision).toBe(2);
    expect(end.message).toContain("watch again from revision 2");
    expect(slow.watcher.take()).toBeUndefined();
    // The store and the other watcher went on as if nothing happened.
    expect(store.revision).toBe(31);
    expect(fastSeen).toEqual(Array.from({ length: 31 }, (_, i) => i + 1));
    expect(hub.size).toBe(1);
  });

  test("the byte limit ends a watcher too; an empty queue takes a batch larger than the limits", () => {
    const { hub, commit } = setup({ hub: { queueEventsMax: 1_000, queueBytesMax: 1_000 } });
    const { watcher, log } = open(hub, prefix("k"));
    commit(put("k1", "x".repeat(5_000)));
    expect(log.ends).toHaveLength(0);
    expect(watcher.pendingEvents).toBe(1);
    commit(put("k2", "y"));
    expect(log.ends.map((e) => [e.reason, e.resumeRevision])).toEqual([["overflow", 1]]);
  });

  test("close ends every watcher (closed) with where to resume, and refuses new ones", () => {
    const { hub, commit } = setup();
    const a = open(hub, single("a"));
    const b = open(hub, single("b"), { startRevision: 1 });
    commit(put("a", "1"));
    hub.close();
    expect(a.log.ends.map((e) => [e.reason, e.resumeRevision])).toEqual([["closed", 1]]);
    expect(b.log.ends.map((e) => [e.reason, e.resumeRevision])).toEqual([["closed", 2]]);
    expect(hub.size).toBe(0);
    expect(() => open(hub, single("c"))).toThrow(HomeKvError);
  });
});

describe("store.changes", () => {
  test("whole revisions, oldest first, and `through` says how far the page is complete", () => {
    const store: MvccStore = createMvccStore({ historyRevisions: Infinity });
    const commit = (...ops: WriteOp[]) => store.apply({ revision: store.revision + 1, ops });
    commit(put("b", "1"), put("a", "1"));
    commit(put("a", "2"));
    commit(del("b"), put("z", "1"));
    const all = store.changes({ after: 0, limit: 100 });
    expect(all.through).toBe(3);
    expect(all.changes.map((c) => `${c.revision}${c.key}`)).toEqual(["1a", "1b", "2a", "3b", "3z"]);
    const page = store.changes({ after: 0, limit: 1 });
    expect([page.through, page.changes.length]).toEqual([1, 2]);
    const ranged = store.changes({ start: "b", end: "z", after: 1, limit: 100 });
    expect(ranged.changes.map((c) => [c.revision, c.key, c.value, text(c.previous)])).toEqual([[3, "b", null, "1"]]);
  });
});

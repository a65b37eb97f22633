import { describe, expect, test } from "bun:test";
import { createMvccStore, type MvccStore } from "../../src/storage/mvcc/store.ts";
import type { WriteOp } from "../../src/storage/ops.ts";
import { bytes, text } from "../helpers/bytes.ts";

/**
 * Keys with a long history (a counter, a lock, a leader key written thousands of times under the
 * default 10,000 revisions of history) must cost what keys without one do: every operation below
 * visits a bounded number of versions, however many the key keeps. Before the chains were indexed
 * by revision, each write walked the whole retained chain (10,000 versions) to compact it.
 */

const HISTORY = 10_000;
/** Versions an operation may visit: a binary search over 10,000 versions takes 14 steps. */
const VISITS_MAX = 64;

const commit = (store: MvccStore, ...ops: WriteOp[]) => store.apply({ revision: store.revision + 1, ops });
const put = (key: string, value: string): WriteOp => ({ key, value: bytes(value) });

/** Versions `run` visited, by the store's own count. */
function visitsOf(store: MvccStore, run: () => unknown): number {
  const before = store.stats().versionsVisited;
  run();
  return store.stats().versionsVisited - before;
}

describe("one key with 10,000 retained versions", () => {
  const store = createMvccStore({ historyRevisions: HISTORY });
  const WRITES = HISTORY + 2_000;
  for (let i = 1; i <= WRITES; i++) commit(store, put("hot", `v${i}`));

  test("the store keeps the history: 10,001 versions, each revision readable", () => {
    expect(store.stats()).toMatchObject({ revision: WRITES, compactedRevision: WRITES - HISTORY, keys: 1 });
    expect(store.stats().versions).toBe(HISTORY + 1);
    expect(text(store.read(["hot"], WRITES - HISTORY)[0])).toBe(`v${WRITES - HISTORY}`);
    expect(text(store.read(["hot"], WRITES - 1)[0])).toBe(`v${WRITES - 1}`);
  });

  test("a write (with its compaction) visits a bounded number of versions", () => {
    for (let i = 0; i < 10; i++) {
      const visits = visitsOf(store, () => commit(store, put("hot", `w${i}`)));
      expect(visits).toBeLessThan(VISITS_MAX);
    }
    expect(store.stats().versions).toBe(HISTORY + 1);
  });

  test("a read at any readable revision visits a bounded number of versions, and reads the right one", () => {
    const current = store.revision;
    for (const revision of [
      current,
      current - 1,
      current - 1_234,
      store.compactedRevision + 1,
      store.compactedRevision,
    ]) {
      let value: string | undefined;
      const visits = visitsOf(store, () => {
        value = text(store.read(["hot"], revision)[0]);
      });
      expect(visits).toBeLessThan(VISITS_MAX);
      expect(value).toBe(revision > WRITES ? `w${revision - WRITES - 1}` : `v${revision}`);
    }
  });

  test("a GC slice visits a bounded number of versions per key it compacts", () => {
    // Writes collect as they go; a Compact raises the floor past 5,000 versions at once, for GC.
    store.apply({ revision: store.revision + 1, kind: "compact", compactTo: store.revision - 5_000 });
    const one = store.collectGarbage(1);
    expect(one.keysVisited).toBe(1);
    for (let slices = 0; slices < 100; slices++) {
      let slice = one;
      const visits = visitsOf(store, () => {
        slice = store.collectGarbage(1_000);
      });
      expect(visits).toBeLessThanOrEqual(VISITS_MAX * Math.max(1, slice.keysVisited));
      if (!slice.more) return;
    }
    throw new Error("GC still reported more after 100 slices");
  });
});

test("a batch of the same 100 keys, each with 150 versions, visits a bounded number of versions per key", () => {
  const store = createMvccStore({ historyRevisions: HISTORY });
  const keys = Array.from({ length: 100 }, (_, i) => `k${i}`);
  for (let round = 0; round < 150; round++) commit(store, ...keys.map((key) => put(key, `${round}`)));
  const visits = visitsOf(store, () => commit(store, ...keys.map((key) => put(key, "last"))));
  expect(visits).toBeLessThan(VISITS_MAX * keys.length);
  const reads = visitsOf(store, () => store.read(keys, 75));
  expect(reads).toBeLessThan(VISITS_MAX * keys.length);
  expect(store.read(keys, 75).map(text)).toEqual(keys.map(() => "74"));
});

test("a long chain restored from a checkpoint is walked once, then read at any revision in a bounded number of visits", () => {
  const written = createMvccStore({ historyRevisions: HISTORY });
  for (let i = 1; i <= 2_000; i++) commit(written, put("hot", `v${i}`));
  const restored = createMvccStore({ historyRevisions: HISTORY });
  restored.restore(written.revision, written.compactedRevision, written.dumpChains({ limit: 10, revision: 2_000 }));
  // Nothing has compacted the restored chain yet: the first read far back walks it (and indexes it).
  expect(text(restored.read(["hot"], 10)[0])).toBe("v10");
  for (const revision of [1, 500, 1_999]) {
    let value: string | undefined;
    const visits = visitsOf(restored, () => {
      value = text(restored.read(["hot"], revision)[0]);
    });
    expect(visits).toBeLessThan(VISITS_MAX);
    expect(value).toBe(`v${revision}`);
  }
});

test("a write to a key whose history lies above the floor visits a few versions, not that history", () => {
  // 50 keys written in turn under 1,000 revisions of history: each keeps 20 versions above the
  // floor, and each write makes one older version garbage. A walk from the newest down to the floor
  // would pass those 20 on every write.
  const store = createMvccStore({ historyRevisions: 1_000 });
  const keys = Array.from({ length: 50 }, (_, i) => `key-${i}`);
  for (let round = 0; round < 60; round++) for (const key of keys) commit(store, put(key, `r${round}`));
  const visits = visitsOf(store, () => {
    for (const key of keys) commit(store, put(key, "last"));
  });
  expect(visits / keys.length).toBeLessThanOrEqual(6);
  // And nothing the floor passed is kept: 20 versions above it and the one visible at it, per key.
  expect(store.stats().versions).toBe(keys.length * 21);
});

test("a hot key restored from a checkpoint keeps its history within the retention as it is written on", () => {
  // A restore queues one GC entry per key, at its newest version: the versions restored above the
  // floor become garbage one per revision as the floor moves, and the key holds them all until the
  // floor passes that newest one, a whole retention later (2,000 versions here, not 1,000).
  const history = 1_000;
  const written = createMvccStore({ historyRevisions: history });
  for (let i = 1; i <= 3 * history; i++) commit(written, put("hot", `v${i}`));
  const restored = createMvccStore({ historyRevisions: history });
  const chains = written.dumpChains({ limit: 10, revision: written.revision });
  restored.restore(written.revision, written.compactedRevision, chains);
  let most = 0;
  for (let i = 1; i <= 2 * history; i++) {
    commit(restored, put("hot", `w${i}`));
    most = Math.max(most, restored.stats().versions);
  }
  // The history and the version at the floor, and what a ring takes to form (one per 32 writes).
  expect(most).toBeLessThanOrEqual(history + 1 + 32);
  expect(restored.stats().versions).toBe(history + 1);
});

test("the first writes after a long-lived snapshot is released visit a bounded number of versions, and the backlog still goes", () => {
  // 20,000 writes of one key under a snapshot: on release they are all garbage (with no history)
  // or all but the retained ones. A write that compacted its chain whole would free them at once.
  for (const history of [0, 1_000]) {
    const store = createMvccStore({ historyRevisions: history });
    commit(store, put("hot", "first"));
    const snapshot = store.openSnapshot();
    for (let i = 0; i < 20_000; i++) commit(store, put("hot", `v${i}`));
    snapshot.release();
    let worst = 0;
    for (let i = 0; i < 10; i++)
      worst = Math.max(
        worst,
        visitsOf(store, () => commit(store, put("hot", `after ${i}`))),
      );
    expect({ history, worst, bounded: worst < VISITS_MAX }).toMatchObject({ history, bounded: true });
    for (let slices = 0; store.collectGarbage(1_000).more; slices++)
      if (slices > 1_000) throw new Error("GC still reports more after 1,000 slices");
    expect({ history, versions: store.stats().versions }).toEqual({ history, versions: history + 1 });
  }
});

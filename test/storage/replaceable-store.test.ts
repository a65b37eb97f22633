import { expect, test } from "bun:test";
import { HomeKvError } from "../../src/errors.ts";
import { createMvccStore, type MvccStore } from "../../src/storage/mvcc/store.ts";
import { createReplaceableObservedStore } from "../../src/storage/replaceable-observed-store.ts";
import type { WatchBatch } from "../../src/storage/watch/watch-hub.ts";
import { text } from "../helpers/bytes.ts";
import { put } from "../helpers/storage.ts";

/**
 * A store replaced by a checkpoint's while it serves (a member installing its leader's snapshot):
 * pinned snapshots, the TTL queue and live watchers are reset, reads go to the new store.
 */
const FAR = Date.now() + 3_600_000;

/** The leader's store: revisions 1..6, with a TTL key among them. */
function leaderStore(): MvccStore {
  const store = createMvccStore({ historyRevisions: 100 });
  for (let r = 1; r <= 6; r++) store.apply({ revision: r, ops: [put(`k${r % 3}`, `v${r}`)] });
  store.apply({ revision: 7, ops: [{ key: "ttl", value: new Uint8Array(1), expiresAtMs: FAR }] });
  return store;
}

function replaced(history: number) {
  const leader = leaderStore();
  const observed = createReplaceableObservedStore({
    historyRevisions: 100,
    expiry: { setTimer: () => 0, clearTimer: () => {} },
  });
  const { store, watchHub } = observed;
  watchHub.attach(store);
  // This member is at revision 2, with two TTL keys the leader's state no longer has as such.
  store.apply({ revision: 1, ops: [put("k1", "v1"), { key: "gone", value: new Uint8Array(1), expiresAtMs: FAR }] });
  store.apply({ revision: 2, ops: [put("k2", "v2"), { key: "gone2", value: new Uint8Array(1), expiresAtMs: FAR }] });
  const pinned = store.openSnapshot();
  const batches: WatchBatch[] = [];
  const ends: string[] = [];
  const watcher = watchHub.watch(
    { start: "k", end: "l", startRevision: 0, prevValue: false },
    { wake: () => {}, end: (end) => ends.push(`${end.reason} ${end.resumeRevision}`) },
  );
  const expiryBefore = observed.expiry.pending;
  const compacted = 7 - history;
  observed.replaceWith(7, compacted, leader.dumpChains({ limit: 100, revision: 7 }));
  const take = () => {
    for (let batch = watcher.take(); batch; batch = watcher.take()) batches.push(batch);
  };
  return { observed, store, pinned, batches, ends, take, expiryBefore };
}

test("reads go to the new store; a snapshot pinned in the old one is released and says E_COMPACTED", () => {
  const { store, pinned } = replaced(3);
  expect(store.revision).toBe(7);
  expect(text(store.read(["k1"])[0]!)).toBe("v4");
  const error = (() => {
    try {
      pinned.read(["k1"]);
    } catch (e) {
      return e;
    }
  })();
  expect(error).toBeInstanceOf(HomeKvError);
  expect((error as HomeKvError).code).toBe("E_COMPACTED");
  expect(store.stats().openSnapshots).toBe(0);
  pinned.release(); // harmless after the replacement
});

test("the TTL queue holds the new store's keys only", () => {
  const { observed, expiryBefore } = replaced(3);
  expect(expiryBefore).toBe(2);
  expect(observed.expiry.pending).toBe(1);
});

test("a live watcher catches up the revisions it missed from the new store's history, then goes on live", () => {
  const leaderHistory = 7; // the checkpoint keeps every revision: nothing the watcher missed is compacted
  const { store, batches, ends, take } = replaced(leaderHistory);
  take();
  expect(ends).toEqual([]);
  expect(batches.map((b) => `${b.revision}:${b.events.map((e) => e.key).join()}`)).toEqual([
    "3:k0",
    "4:k1",
    "5:k2",
    "6:k0",
  ]);
  store.apply({ revision: 8, ops: [put("k9", "x")] });
  take();
  expect(batches.at(-1)?.revision).toBe(8);
});

test("a live watcher whose missed revisions the new store has compacted ends as compacted, from where it was", () => {
  const { ends, take } = replaced(2);
  take();
  expect(ends).toEqual(["compacted 3"]);
});

test("the store a checkpoint replaces is built on the engine of the settings", () => {
  const leader = leaderStore();
  const observed = createReplaceableObservedStore({
    engine: { kind: "flsm", memtableBytes: 4096 },
    historyRevisions: 100,
    expiry: { setTimer: () => 0, clearTimer: () => {} },
  });
  observed.replaceWith(7, 4, leader.dumpChains({ limit: 100, revision: 7 }));
  expect(observed.store.stats().engine.name).toBe("flsm");
  expect(text(observed.store.read(["k1"])[0]!)).toBe("v4");
  // The history the checkpoint carries came along: k2 was v2 until revision 5 wrote v5.
  expect(text(observed.store.read(["k2"], 4)[0]!)).toBe("v2");
});

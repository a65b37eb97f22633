import { createObservedStore, type ObservedStore, type StoreSettings } from "./database.ts";
import { createStore } from "./engine.ts";
import { createReplaceableStore, type ReplaceableStore } from "./mvcc/replaceable-store.ts";
import type { KeyChain } from "./mvcc/store.ts";

/** A store with its observers whose whole state can be replaced by a checkpoint's while it serves. */
export interface ReplaceableObservedStore extends ObservedStore {
  store: ReplaceableStore;
  /**
   * Builds a new store from a checkpoint and puts it in the old one's place, then resets what was
   * tied to the old one: the TTL queue (the new store reports its own TTLs as it is restored),
   * pinned snapshots (released; scan cursors on them start again), and live watchers (they catch
   * up from the new store's history, or end as compacted). Synchronous: no read sees a mix.
   */
  replaceWith(revision: number, compactedRevision: number, chains: Iterable<KeyChain>): void;
}

export function createReplaceableObservedStore(
  settings: StoreSettings,
  report?: (line: string) => void,
): ReplaceableObservedStore {
  const { store: initial, expiry, watchHub } = createObservedStore(settings, report);
  const store = createReplaceableStore(initial);
  return {
    store,
    expiry,
    watchHub,
    replaceWith(revision, compactedRevision, chains) {
      const next = createStore(settings.engine, expiry.storeOptions);
      expiry.clear();
      next.restore(revision, compactedRevision, chains);
      const previous = store.revision;
      store.replace(next);
      watchHub.storeReplaced(previous);
    },
  };
}

import { HomeKvError } from "../../errors.ts";
import type { MvccStore, Snapshot } from "./store.ts";

/** A store whose whole state can be replaced by another store's, for every holder at once. */
export interface ReplaceableStore extends MvccStore {
  /** The store the calls go to now (a checkpoint pins it: it must read one store throughout). */
  readonly current: MvccStore;
  /**
   * From now on every call goes to `next`. Snapshots open on the store replaced are released, and
   * reading through them fails with E_COMPACTED: their revision may still be readable in `next`,
   * but under another store (a scan cursor starts again).
   */
  replace(next: MvccStore): void;
}

/**
 * The store a replicated member serves from: one object that the database, the GC, the TTL sweeper
 * and the watch hub hold, forwarding to the store of the moment, so that a store built from a
 * leader's snapshot takes the place of the old one for all of them in one step.
 */
export function createReplaceableStore(initial: MvccStore): ReplaceableStore {
  let store = initial;
  const open = new Set<{ replaced: boolean; inner: Snapshot }>();
  return {
    get current() {
      return store;
    },
    replace(next) {
      for (const held of open) {
        held.replaced = true;
        held.inner.release();
      }
      open.clear();
      store = next;
    },
    get revision() {
      return store.revision;
    },
    get compactedRevision() {
      return store.compactedRevision;
    },
    read: (keys, revision) => store.read(keys, revision),
    readRecords: (keys, revision) => store.readRecords(keys, revision),
    newestRevision: (key) => store.newestRevision(key),
    valueBytes: (keys, revision) => store.valueBytes(keys, revision),
    evaluate: (compares, revision) => store.evaluate(compares, revision),
    scan: (options) => store.scan(options),
    changes: (options) => store.changes(options),
    apply: (entry) => store.apply(entry),
    applyLate: (entry) => store.applyLate(entry),
    compactTo: (revision) => store.compactTo(revision),
    restore: (revision, compactedRevision, chains) => store.restore(revision, compactedRevision, chains),
    dumpChains: (options) => store.dumpChains(options),
    collectGarbage: (maxKeys) => store.collectGarbage(maxKeys),
    stats: () => store.stats(),
    openSnapshot() {
      const held = { replaced: false, inner: store.openSnapshot() };
      open.add(held);
      const { revision, compactedRevision } = held.inner;
      const live = () => {
        if (held.replaced)
          throw new HomeKvError(
            "E_COMPACTED",
            `revision ${revision} was pinned in a store this member has since replaced with the leader's snapshot; read again`,
          );
        return held.inner;
      };
      return {
        revision,
        compactedRevision,
        read: (keys) => live().read(keys),
        readRecords: (keys) => live().readRecords(keys),
        scan: (options) => live().scan(options),
        chains: (options) => live().chains(options),
        release() {
          if (!open.delete(held)) return;
          held.inner.release();
        },
      };
    },
  };
}

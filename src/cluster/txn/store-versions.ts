import type { ReadView, WriteView } from "../../storage/mvcc/store-types.ts";
import type { VersionStore } from "./percolator.ts";

/**
 * A partition's MVCC store as Percolator's VersionStore. A write above the store's revision is a
 * command there (revisions with gaps: the partition's commits are the cluster's timestamps); one at
 * or below it is a secondary committed late (`applyLate`). A read at a timestamp past the store's
 * revision reads the store's revision: nothing committed on this partition lies between (the
 * leader's commit pipeline and the read's barrier see to that).
 *
 * The store must keep its compacted revision below every open lock's start timestamp, or late
 * commits are refused as compacted (see WriteView.applyLate).
 */
export function storeVersions(store: ReadView & WriteView): VersionStore {
  return {
    newest: (key) => store.newestRevision(key),
    read: (key, ts) => store.read([key], Math.min(ts, store.revision))[0],
    write(commitTs, mutations) {
      const ops = mutations.map(({ key, value, expiresAtMs }) =>
        expiresAtMs === undefined ? { key, value } : { key, value, expiresAtMs },
      );
      if (commitTs > store.revision) store.apply({ revision: commitTs, ops });
      else store.applyLate({ revision: commitTs, ops });
    },
    compact: (revision) => store.compactTo(revision),
    compactedRevision: () => store.compactedRevision,
  };
}

import { assert } from "../../errors.ts";

/**
 * Open snapshots, counted per the revision they hold GC at (the compacted revision when each was
 * opened). The oldest open one bounds what GC may drop. That revision only grows, so the oldest is
 * the first key of the insertion-ordered map: finding it is O(1) and releasing is O(1) amortised.
 */
export class SnapshotRegistry {
  private readonly countsByRevision = new Map<number, number>();
  private total = 0;
  private newestOpened = 0;

  open(revision: number): void {
    assert(revision >= this.newestOpened, "snapshots are opened in revision order");
    this.newestOpened = revision;
    this.countsByRevision.set(revision, (this.countsByRevision.get(revision) ?? 0) + 1);
    this.total++;
  }

  release(revision: number): void {
    const count = this.countsByRevision.get(revision);
    assert(count !== undefined && count > 0, () => `no open snapshot at revision ${revision}`);
    if (count === 1) this.countsByRevision.delete(revision);
    else this.countsByRevision.set(revision, count - 1);
    this.total--;
  }

  /** The oldest revision an open snapshot holds GC at, or undefined when none is open. */
  oldest(): number | undefined {
    for (const revision of this.countsByRevision.keys()) return revision;
    return undefined;
  }

  get size(): number {
    return this.total;
  }
}

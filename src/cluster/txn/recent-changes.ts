/**
 * The keys a partition's store wrote lately, in the order it wrote them, so that a watcher's poll of
 * a quiet range (PartitionGroup.changes) learns that nothing in it changed without walking the
 * range's keys. Bounded: the oldest are forgotten, and a poll from before them walks the range.
 *
 * Each write is kept with its revision and `appliedAt`, the store's revision once it was applied.
 * A late commit (a secondary below the store's revision) has a revision below entries before it,
 * but appliedAt only grows: every change after revision R was applied after the store reached R,
 * so a poll after R looks back only to the first entry whose appliedAt is at most R.
 */
export class RecentChanges {
  private readonly keys: string[] = [];
  private readonly revisions: number[] = [];
  private readonly appliedAt: number[] = [];
  /** Index of the oldest entry in the ring. */
  private head = 0;
  /** Every change after this revision is here. */
  private coveredAfter: number;

  constructor(
    private readonly capacity: number,
    from: number,
  ) {
    this.coveredAfter = from;
  }

  /** The store wrote `keys` at `revision`, and stands at `appliedAt` now. */
  record(keys: readonly string[], revision: number, appliedAt: number): void {
    for (const key of keys) {
      if (this.keys.length < this.capacity) {
        this.keys.push(key);
        this.revisions.push(revision);
        this.appliedAt.push(appliedAt);
        continue;
      }
      // Full: the oldest goes, and with it the certainty about what was written up to its appliedAt.
      this.coveredAfter = Math.max(this.coveredAfter, this.appliedAt[this.head]!);
      this.keys[this.head] = key;
      this.revisions[this.head] = revision;
      this.appliedAt[this.head] = appliedAt;
      this.head = (this.head + 1) % this.capacity;
    }
  }

  /** The store was replaced (a leader's snapshot installed) at `revision`: nothing before is known. */
  reset(revision: number): void {
    this.keys.length = 0;
    this.revisions.length = 0;
    this.appliedAt.length = 0;
    this.head = 0;
    this.coveredAfter = revision;
  }

  /**
   * Whether a key `inRange` was written at a revision after `after`; undefined when the changes
   * after it are no longer all here (the range must be walked).
   */
  changedAfter(after: number, inRange: (key: string) => boolean): boolean | undefined {
    if (after < this.coveredAfter) return undefined;
    const size = this.keys.length;
    // Newest first, back to the first entry applied when the store stood at `after` or before.
    for (let n = 0; n < size; n++) {
      const i = (this.head + size - 1 - n) % size;
      if (this.appliedAt[i]! <= after) return false;
      if (this.revisions[i]! > after && inRange(this.keys[i]!)) return true;
    }
    return false;
  }
}

/**
 * The keys GC must look at again, in the order they become collectable. A write that leaves a key
 * with older versions (or a tombstone) enqueues (its entry, revision of that write): once the GC floor
 * reaches that revision, everything older in the chain is unreachable. Writes come in revision
 * order, so the queue is sorted by construction: GC pops from the head while the head is at or
 * below the floor, and does no work at all while it is not — a long-lived snapshot makes it wait,
 * never spin.
 *
 * Entries are ids (numbers), not key strings: a million queued strings made every full collection
 * of the JavaScript heap mark a million objects (GC slices of 60 ms). An id may be reused by another
 * key before it comes up; compacting that key instead is harmless (compaction drops only what no
 * reader can see), and the key that had the id had no version left when it gave it up.
 */
export class GcQueue {
  private keys: number[] = [];
  private revisions: number[] = [];
  private head = 0;

  push(key: number, revision: number): void {
    this.keys.push(key);
    this.revisions.push(revision);
  }

  /** The key at the head if it is collectable at `floor`; undefined otherwise. */
  popReady(floor: number): number | undefined {
    if (this.head === this.keys.length || this.revisions[this.head]! > floor) return undefined;
    const key = this.keys[this.head]!;
    this.head++;
    // Drop the consumed prefix now and then, in amortised O(1).
    if (this.head > 4_096 && this.head * 2 > this.keys.length) {
      this.keys = this.keys.slice(this.head);
      this.revisions = this.revisions.slice(this.head);
      this.head = 0;
    }
    return key;
  }

  hasReady(floor: number): boolean {
    return this.head < this.keys.length && this.revisions[this.head]! <= floor;
  }

  get size(): number {
    return this.keys.length - this.head;
  }
}

/**
 * The keys GC must look at again, in the order they become collectable. A write that leaves a key
 * with older versions (or a tombstone) enqueues (key, revision of that write): once the GC floor
 * reaches that revision, everything older in the chain is unreachable. Writes come in revision
 * order, so the queue is sorted by construction: GC pops from the head while the head is at or
 * below the floor, and does no work at all while it is not — a long-lived snapshot makes it wait,
 * never spin.
 */
export class GcQueue {
  private keys: string[] = [];
  private revisions: number[] = [];
  private head = 0;

  push(key: string, revision: number): void {
    this.keys.push(key);
    this.revisions.push(revision);
  }

  /** The key at the head if it is collectable at `floor`; undefined otherwise. */
  popReady(floor: number): string | undefined {
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

/**
 * The memtable keys GC must look at again, in the order they become collectable: a write that
 * leaves a key with older versions (or a tombstone) in the memtable enqueues (key, revision of that
 * write); once the GC floor reaches that revision, everything older is unreachable. Writes come in
 * revision order, so the queue is sorted by construction, and GC waits (never spins) while its head
 * is above the floor. A late commit (applyLate) enqueues below the entries before it and waits
 * behind them: collected later than it could be, never early. A key may come up more than once; compacting it again finds nothing.
 */
export class KeyQueue {
  private keys: string[] = [];
  private revisions: number[] = [];
  private head = 0;

  push(key: string, revision: number): void {
    this.keys.push(key);
    this.revisions.push(revision);
  }

  /** The key at the head if it is collectable at `floor`; undefined otherwise. */
  popReady(floor: number): string | undefined {
    if (!this.hasReady(floor)) return undefined;
    const key = this.keys[this.head++]!;
    // What was popped goes once it is half the queue: amortised O(1); a queue holds at most the
    // versions of one memtable, so a copy is short.
    if (this.head >= 1_024 && this.head * 2 >= this.keys.length) {
      this.keys = this.keys.slice(this.head);
      this.revisions = this.revisions.slice(this.head);
      this.head = 0;
    }
    return key;
  }

  hasReady(floor: number): boolean {
    return this.head < this.keys.length && this.revisions[this.head]! <= floor;
  }

  /** Forgets every key (their memtable was frozen: its versions are compacted in its table). */
  clear(): void {
    this.keys = [];
    this.revisions = [];
    this.head = 0;
  }
}

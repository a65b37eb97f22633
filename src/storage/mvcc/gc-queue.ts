/**
 * The keys GC must look at again, in the order they become collectable. A write that leaves a key
 * with older versions (or a tombstone) enqueues (its entry, revision of that write, the version's
 * slot): once the GC floor reaches that revision, everything older in the chain is unreachable, and
 * the slot says where that starts. Writes come in revision
 * order, so the queue is sorted by construction: GC pops from the head while the head is at or
 * below the floor, and does no work at all while it is not — a long-lived snapshot makes it wait,
 * never spin. A late commit (applyLate) enqueues below the entries before it: it waits behind them,
 * collected later than it could be but never before the floor reaches it.
 *
 * Entries are ids (numbers), not key strings: a million queued strings made every full collection
 * of the JavaScript heap mark a million objects (GC slices of 60 ms). An id may be reused by another
 * key before it comes up; compacting that key instead is harmless (compaction drops only what no
 * reader can see), and the key that had the id had no version left when it gave it up.
 */
export class GcQueue {
  /** Oldest first, in typed-array chunks: consumed chunks are dropped whole. */
  private readonly chunks: { keys: Int32Array; revisions: Float64Array; slots: Int32Array }[] = [];
  /** The next entry to pop, in chunks[0]. */
  private head = 0;
  /** Entries in the last chunk. */
  private tail = 0;
  private count = 0;
  /** The entry `popReady` took last (one record, reused: a pop allocates nothing). */
  readonly popped = { key: 0, revision: 0, slot: 0 };

  constructor(private readonly chunkEntries = 4_096) {}

  push(key: number, revision: number, slot: number): void {
    if (this.chunks.length === 0 || this.tail === this.chunkEntries) {
      this.chunks.push({
        keys: new Int32Array(this.chunkEntries),
        revisions: new Float64Array(this.chunkEntries),
        slots: new Int32Array(this.chunkEntries),
      });
      this.tail = 0;
    }
    const last = this.chunks[this.chunks.length - 1]!;
    last.keys[this.tail] = key;
    last.revisions[this.tail] = revision;
    last.slots[this.tail] = slot;
    this.tail++;
    this.count++;
  }

  /** Takes the head if it is collectable at `floor` (then true, and `popped` holds it). */
  popReady(floor: number): boolean {
    if (!this.hasReady(floor)) return false;
    const first = this.chunks[0]!;
    this.popped.key = first.keys[this.head]!;
    this.popped.revision = first.revisions[this.head]!;
    this.popped.slot = first.slots[this.head]!;
    this.count--;
    // A consumed chunk goes at once: no step ever copies what is left (copying half of a million
    // queued entries at once made GC slices of 30–60 ms).
    if (++this.head === this.chunkEntries) {
      this.chunks.shift();
      this.head = 0;
    }
    return true;
  }

  hasReady(floor: number): boolean {
    return this.count > 0 && this.chunks[0]!.revisions[this.head]! <= floor;
  }

  get size(): number {
    return this.count;
  }
}

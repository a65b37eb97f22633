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
  /** Oldest first, in typed-array chunks: consumed chunks are dropped whole. */
  private readonly chunks: { keys: Int32Array; revisions: Float64Array }[] = [];
  /** The next entry to pop, in chunks[0]. */
  private head = 0;
  /** Entries in the last chunk. */
  private tail = 0;
  private count = 0;

  constructor(private readonly chunkEntries = 4_096) {}

  push(key: number, revision: number): void {
    if (this.chunks.length === 0 || this.tail === this.chunkEntries) {
      this.chunks.push({ keys: new Int32Array(this.chunkEntries), revisions: new Float64Array(this.chunkEntries) });
      this.tail = 0;
    }
    const last = this.chunks[this.chunks.length - 1]!;
    last.keys[this.tail] = key;
    last.revisions[this.tail] = revision;
    this.tail++;
    this.count++;
  }

  /** The key at the head if it is collectable at `floor`; undefined otherwise. */
  popReady(floor: number): number | undefined {
    if (!this.hasReady(floor)) return undefined;
    const key = this.chunks[0]!.keys[this.head]!;
    this.count--;
    // A consumed chunk goes at once: no step ever copies what is left (copying half of a million
    // queued entries at once made GC slices of 30–60 ms).
    if (++this.head === this.chunkEntries) {
      this.chunks.shift();
      this.head = 0;
    }
    return key;
  }

  hasReady(floor: number): boolean {
    return this.count > 0 && this.chunks[0]!.revisions[this.head]! <= floor;
  }

  get size(): number {
    return this.count;
  }
}

/**
 * The keys waiting to expire, earliest deadline first: a binary min-heap of (expiresAtMs, key,
 * revision), ordered by deadline, then revision, then key (so that the order is total). Pure: it
 * takes `nowMs` as an argument and never looks at a clock.
 *
 * Each key counts once: an entry is live while its revision is the newest one added for its key, so
 * a key rewritten with a new TTL leaves its old entry behind as stale, skipped when popped and
 * dropped when stale entries outnumber live ones (the heap stays within 2 × live + a constant).
 * A live entry may still be out of date (the key was deleted, or rewritten without a TTL): that is
 * harmless, because the expire command deletes a key only if its newest version is the one written
 * at the entry's revision.
 *
 *   add(2000, "a", 5)  add(1000, "b", 6)  add(3000, "a", 7)      heap: b@6 (1000), a@5 (2000, stale), a@7 (3000)
 *   popDue(2500, 10) → [b@6]                                     a@5 popped and skipped
 *   popDue(3000, 10) → [a@7]                                     empty
 */
export interface ExpiryEntry {
  readonly expiresAtMs: number;
  readonly key: string;
  readonly revision: number;
}

/** Stale entries tolerated beyond the live ones before the heap is rebuilt without them. */
const STALE_SLACK = 1_024;

export class ExpiryQueue {
  private heap: ExpiryEntry[] = [];
  /** Newest revision added per key, while its entry is queued. */
  private readonly latest = new Map<string, number>();

  /** Queues `key` to expire at `expiresAtMs`; returns false if a newer entry of the key is queued already. */
  add(expiresAtMs: number, key: string, revision: number): boolean {
    const queued = this.latest.get(key);
    if (queued !== undefined && queued >= revision) return false;
    this.latest.set(key, revision);
    this.push({ expiresAtMs, key, revision });
    if (this.heap.length > 2 * this.latest.size + STALE_SLACK) this.dropStale();
    return true;
  }

  /**
   * Removes and returns the live entries due at `nowMs` (deadline ≤ now), earliest first. Pops at
   * most `max` entries from the heap (stale ones count: the work is bounded), so it may return fewer
   * than are due: call again while `nextDeadline()` ≤ now.
   */
  popDue(nowMs: number, max: number): ExpiryEntry[] {
    const due: ExpiryEntry[] = [];
    for (let popped = 0; popped < max && this.heap.length > 0 && this.heap[0]!.expiresAtMs <= nowMs; popped++) {
      const entry = this.pop();
      if (this.latest.get(entry.key) !== entry.revision) continue; // stale: the key was added again since
      this.latest.delete(entry.key);
      due.push(entry);
    }
    return due;
  }

  /** Forgets every entry (the store they came from was replaced). */
  clear(): void {
    this.heap = [];
    this.latest.clear();
  }

  /** Deadline of the first entry (live or stale: a stale one only makes a timer fire early); undefined when empty. */
  nextDeadline(): number | undefined {
    return this.heap[0]?.expiresAtMs;
  }

  /** Live entries: keys waiting to expire. */
  get size(): number {
    return this.latest.size;
  }

  /** Entries in the heap, stale ones included (bounded by 2 × size + a constant). */
  get heapSize(): number {
    return this.heap.length;
  }

  private dropStale(): void {
    this.heap = this.heap.filter((entry) => this.latest.get(entry.key) === entry.revision);
    for (let i = (this.heap.length >> 1) - 1; i >= 0; i--) this.siftDown(i);
  }

  private push(entry: ExpiryEntry): void {
    const heap = this.heap;
    heap.push(entry);
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(entry, heap[parent]!)) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = entry;
  }

  private pop(): ExpiryEntry {
    const heap = this.heap;
    const top = heap[0]!;
    const last = heap.pop()!;
    if (heap.length > 0) {
      heap[0] = last;
      this.siftDown(0);
    }
    return top;
  }

  private siftDown(start: number): void {
    const heap = this.heap;
    const entry = heap[start]!;
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= heap.length) break;
      const right = left + 1;
      const child = right < heap.length && before(heap[right]!, heap[left]!) ? right : left;
      if (!before(heap[child]!, entry)) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = entry;
  }
}

/** The queue's total order: deadline, then revision, then key. */
export function before(a: ExpiryEntry, b: ExpiryEntry): boolean {
  if (a.expiresAtMs !== b.expiresAtMs) return a.expiresAtMs < b.expiresAtMs;
  if (a.revision !== b.revision) return a.revision < b.revision;
  return a.key < b.key;
}

/** A call with a deadline: what runs when it passes. */
export interface Expiring {
  expire(): void;
}

/** Deadlines fire at most this late: the width of a bucket. */
export const DEADLINE_BUCKET_MS = 10;
/** The longest delay a timer takes (setTimeout's bound); a bucket further out is re-armed on the way. */
const TIMER_MS_MAX = 2 ** 31 - 1;

/**
 * The deadlines (grpc-timeout) of the calls in flight, in buckets of DEADLINE_BUCKET_MS with one
 * timer each: a timer set and cleared for every call was a good part of the native server's CPU per
 * call, and at thousands of calls a second most of them share a bucket. A call that ends takes itself
 * out of its bucket (a Set); a bucket whose calls all ended fires for nothing. The timers do not keep
 * the process alive: the listening socket does, and calls in flight end with their connections.
 */
export class Deadlines {
  private readonly buckets = new Map<number, Set<Expiring>>();

  constructor(private readonly now: () => number = () => performance.now()) {}

  /** Expires `call` once `ms` have passed; returns the set to delete it from when it ends first. */
  add(call: Expiring, ms: number): Set<Expiring> {
    const dueMs = Math.ceil((this.now() + ms) / DEADLINE_BUCKET_MS) * DEADLINE_BUCKET_MS;
    let bucket = this.buckets.get(dueMs);
    if (bucket === undefined) {
      bucket = new Set();
      this.buckets.set(dueMs, bucket);
      this.arm(dueMs);
    }
    bucket.add(call);
    return bucket;
  }

  private arm(dueMs: number): void {
    const delayMs = Math.min(TIMER_MS_MAX, Math.max(0, dueMs - this.now()));
    setTimeout(() => this.fire(dueMs), delayMs).unref();
  }

  private fire(dueMs: number): void {
    if (this.now() < dueMs) return this.arm(dueMs); // a bucket past the longest timer
    const bucket = this.buckets.get(dueMs);
    this.buckets.delete(dueMs);
    for (const call of bucket ?? []) call.expire();
  }
}

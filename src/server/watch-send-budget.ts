import { QueueBudget } from "../storage/watch/queue-budget.ts";

/**
 * What watchers hold across the whole server (--max-watch-buffer-bytes), in two halves, each bounded
 * by the one means that frees it:
 *
 * - messages in flight: handed to a stream and not yet taken by its client, like Redis's client
 *   output buffer limit. Each stream has at most one message in flight and reserves its size first;
 *   when this half is used up, streams wait. A stream whose message has not gone out within
 *   `stuckMs` while others wait is reset (its client stopped reading), which frees what was buffered
 *   for it: ending the call with a status would not, the status goes out after the message. A message
 *   larger than the whole half goes only alone.
 * - events queued for watchers (`queues`): past its half, the watchers furthest behind are ended
 *   (RESOURCE_EXHAUSTED with the revision to resume from), which frees their queues.
 *
 * So however many clients stop reading, what is held for them stays within `bytesMax`.
 */
export class WatchSendBudget {
  private used = 0;
  private readonly waiting = new Set<() => void>();
  private readonly inFlight = new Set<InFlight>();
  /** The half for messages in flight; `queues` has the rest. */
  readonly inFlightBytesMax: number;
  readonly queues: QueueBudget;

  constructor(
    readonly bytesMax: number,
    private readonly stuckMs: number,
    private readonly now: () => number = () => performance.now(),
  ) {
    this.inFlightBytesMax = Math.max(1, Math.ceil(bytesMax / 2));
    this.queues = new QueueBudget(Math.max(1, bytesMax - this.inFlightBytesMax));
  }

  /** Bytes of the messages in flight. */
  get usedBytes(): number {
    return this.used;
  }

  /** Reserves `bytes` for a message about to be written, or returns undefined and calls `wake` at the next release. */
  reserve(bytes: number, wake: () => void, evict: () => void): InFlight | undefined {
    if (this.used > 0 && this.used + bytes > this.inFlightBytesMax) {
      this.waiting.add(wake);
      return undefined;
    }
    this.waiting.delete(wake);
    this.used += bytes;
    const held: InFlight = { bytes, sinceMs: this.now(), evict };
    this.inFlight.add(held);
    return held;
  }

  /** The message went out (or its stream ended): its bytes are free again. */
  release(held: InFlight): void {
    if (!this.inFlight.delete(held)) return;
    this.used -= held.bytes;
    const woken = [...this.waiting];
    this.waiting.clear();
    for (const wake of woken) wake();
  }

  forget(wake: () => void): void {
    this.waiting.delete(wake);
  }

  /** Resets the streams stuck past `stuckMs`, while others wait for room; called on a timer. */
  sweep(): void {
    if (this.waiting.size === 0) return;
    const nowMs = this.now();
    for (const held of [...this.inFlight]) {
      if (nowMs - held.sinceMs < this.stuckMs) continue;
      this.release(held);
      held.evict();
    }
  }
}

export interface InFlight {
  readonly bytes: number;
  readonly sinceMs: number;
  readonly evict: () => void;
}

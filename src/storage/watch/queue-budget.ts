import { assert } from "../../errors.ts";
import type { QueueMeter } from "./batch-queue.ts";

/**
 * What the queues of all the watchers of a server hold of their own (BatchQueue's `ownBytes`),
 * together. A watcher's own limits end it when it alone falls too far behind; those limits do not
 * add up: a thousand watchers that never read, each under its own limit, held 600 MiB. Past
 * `bytesMax`, this ends the watchers furthest behind — the most bytes waiting — until the queues hold
 * at most three quarters of it, so that it does not run again at the very next commit. An ordinary
 * watcher, which takes what comes as it comes, has next to nothing waiting and is ended last.
 *
 *   bytesMax 100: queues a 70, b 30, c 5 (105) → a is ended (35 left, under 75); b and c go on
 *
 * Queues report as they change, while the store applies a commit; the watchers are ended right after
 * (a microtask), not in the middle of the hub's fan-out.
 */
export class QueueBudget {
  private used = 0;
  private readonly accounts = new Set<QueueAccount>();
  private pending = false;

  constructor(
    readonly bytesMax: number,
    private readonly defer: (task: () => void) => void = queueMicrotask,
  ) {
    assert(bytesMax > 0, "a queue budget must be positive");
  }

  get usedBytes(): number {
    return this.used;
  }

  /** Watchers with an account (open, not yet closed). */
  get size(): number {
    return this.accounts.size;
  }

  /** An account for one watcher's queue (its meter); `shed` ends that watcher when it is among the furthest behind. */
  open(shed: (reason: ShedReason) => void): QueueAccount {
    let closed = false;
    const account: QueueAccount = {
      bytes: 0,
      change: (deltaBytes) => {
        if (closed) return; // the queue cleared after its account closed: counted off already
        account.bytes += deltaBytes;
        this.used += deltaBytes;
        if (this.used > this.bytesMax && !this.pending) {
          this.pending = true;
          this.defer(() => this.shed());
        }
      },
      close: () => {
        // The queue is cleared when its watcher ends; whatever it still counts goes with it.
        if (closed) return;
        closed = true;
        this.accounts.delete(account);
        this.used -= account.bytes;
        account.bytes = 0;
      },
      shed,
    };
    this.accounts.add(account);
    return account;
  }

  /** Ends the watchers with the most waiting until the queues hold at most 3/4 of `bytesMax`. */
  shed(): void {
    this.pending = false;
    if (this.used <= this.bytesMax) return;
    const heldBytes = this.used;
    const target = Math.floor((this.bytesMax * 3) / 4);
    for (const account of [...this.accounts].sort((a, b) => b.bytes - a.bytes)) {
      if (this.used <= target || account.bytes === 0) break;
      const waitingBytes = account.bytes;
      account.shed({ heldBytes, bytesMax: this.bytesMax, waitingBytes });
      account.close();
    }
  }
}

/** Why a watcher was ended: the queues held `heldBytes`, over `bytesMax`, and `waitingBytes` of it waited for this one. */
export interface ShedReason {
  heldBytes: number;
  bytesMax: number;
  waitingBytes: number;
}

export interface QueueAccount extends QueueMeter {
  /** What the watcher's queue holds of its own now. */
  bytes: number;
  /** Leaves the budget (the watcher ended); idempotent. */
  close(): void;
  readonly shed: (reason: ShedReason) => void;
}

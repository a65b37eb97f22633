import { HomeKvError } from "../../errors.ts";
import { realTimers, type Timers } from "../../timers.ts";
import type { Entry } from "../raft/types.ts";
import { dropped } from "./raft-driver.ts";

interface Waiter<R> {
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
  cancelTimer: () => void;
  leader: string;
  /** Where the leader put the entry, once it said so. */
  index?: number;
  term?: number;
}

/**
 * The writes a follower forwarded to the leader, each waiting to be applied here: the entry names
 * this member and the write's sequence number (entry-command.ts), so the write is answered with
 * what applying it here returned, and reads here see it as soon as it is answered.
 *
 * The leader answers the forward with the entry's index and term; another entry applied at that
 * index means the write was dropped (a retry is safe). A write neither seen applied nor dropped
 * within the timeout, or passed by a snapshot, ends in "outcome unknown".
 */
export class ForwardedWrites<R> {
  private readonly waiting = new Map<number, Waiter<R>>();
  /**
   * The waiters the leader has located, by their entry's index: what an applied entry may displace.
   * Rarely more than one per index (a write given an index by a leader that lost it, and another
   * given the same index by the next).
   */
  private readonly byIndex = new Map<number, number[]>();
  private nextSeq: number;
  /** The last index a snapshot installed here covered: entries up to it were never applied one by one. */
  private snapshotThrough = 0;

  /**
   * `firstSeq`: where this process's sequence numbers start. Entries that an earlier process of
   * this member forwarded are in the log too, and are applied again after a restart (the store is
   * rebuilt from the log) or committed late: counting from 1 again, the new process would take
   * their outcomes for its own writes' answers. A random start (FIRST_SEQ_SPAN) keeps them apart.
   */
  constructor(
    private readonly timeoutMs: number,
    private readonly timers: Timers = realTimers,
    firstSeq = 1,
  ) {
    this.nextSeq = firstSeq;
  }

  /** A sequence number for a write about to be forwarded, and the promise of its answer. */
  open(leader: string): { seq: number; done: Promise<R> } {
    const seq = this.nextSeq++;
    const done = new Promise<R>((resolve, reject) => {
      // Through settle, as every other outcome: a located write must leave byIndex too.
      const cancelTimer = this.timers.after(this.timeoutMs, () =>
        this.settle(seq)?.reject(
          unknown(
            `the write forwarded to the leader (member ${leader}) was not seen applied within ${this.timeoutMs} ms`,
          ),
        ),
      );
      this.waiting.set(seq, { resolve, reject, cancelTimer, leader });
    });
    return { seq, done };
  }

  /**
   * The leader put the write at `index` in `term`. If this member has applied past `index` already
   * without the write answering, another entry took that index — unless a snapshot covered it (the
   * answer was slower than the snapshot): the write may be in it, so the outcome is unknown.
   */
  located(seq: number, index: number, term: number, appliedIndex: number): void {
    const waiter = this.waiting.get(seq);
    if (waiter === undefined) return;
    if (index <= this.snapshotThrough) this.settle(seq)?.reject(overtakenAt(index));
    else if (index <= appliedIndex) this.settle(seq)?.reject(dropped(index));
    else {
      waiter.index = index;
      waiter.term = term;
      const located = this.byIndex.get(index);
      if (located) located.push(seq);
      else this.byIndex.set(index, [seq]);
    }
  }

  /** The leader refused the write (it was not proposed): the caller gets why. */
  refused(seq: number, error: unknown): void {
    this.settle(seq)?.reject(error);
  }

  /** Every committed entry, as it is applied here: the waiter it answers, or a waiter it displaced. */
  applied(entry: Entry, seq: number | undefined, result: R): void {
    if (seq !== undefined) this.settle(seq)?.resolve(result);
    // Its own entry resolved it above: waiters still located at this index were displaced by another
    // leader's. A copy: settling one takes it out of the list being walked.
    for (const displaced of [...(this.byIndex.get(entry.index) ?? [])])
      this.settle(displaced)?.reject(dropped(entry.index));
  }

  /** A snapshot replaced the log through `index`: writes at or below it can no longer be told apart. */
  overtaken(index: number): void {
    this.snapshotThrough = Math.max(this.snapshotThrough, index);
    for (const [seq, waiter] of this.waiting) {
      if (waiter.index !== undefined && waiter.index <= index) this.settle(seq)?.reject(overtakenAt(waiter.index));
    }
  }

  failAll(error: unknown): void {
    for (const seq of [...this.waiting.keys()]) this.settle(seq)?.reject(error);
  }

  get size(): number {
    return this.waiting.size;
  }

  private settle(seq: number): Waiter<R> | undefined {
    const waiter = this.waiting.get(seq);
    if (waiter === undefined) return undefined;
    this.waiting.delete(seq);
    if (waiter.index !== undefined) this.unlocate(seq, waiter.index);
    waiter.cancelTimer();
    return waiter;
  }

  private unlocate(seq: number, index: number): void {
    const located = this.byIndex.get(index)!;
    if (located.length === 1) this.byIndex.delete(index);
    else located.splice(located.indexOf(seq), 1);
  }
}

function overtakenAt(index: number): HomeKvError {
  return unknown(`the write at index ${index} was overtaken by a snapshot from the leader`);
}

function unknown(what: string): HomeKvError {
  return new HomeKvError("E_UNAVAILABLE", `outcome unknown: ${what}`);
}

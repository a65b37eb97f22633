import { assert } from "../../errors.ts";

/**
 * What a leader knows of one follower's log, and how it sends to it (etcd's tracker.Progress):
 * `match`, the last index known to be the same as the leader's, and `next`, the next to send.
 *
 *   probe      after a start or a rejection: one append at a time, then wait for its answer (or a
 *              heartbeat's) before the next;
 *   replicate  after an acceptance: appends go out ahead of their answers, within an inflight window
 *              bounded in messages and in bytes;
 *   snapshot   a snapshot is on its way: nothing is sent until it is acknowledged or the transport
 *              reports its outcome (a heartbeat must not start it again: a snapshot is large).
 *
 *   probe ──accepted──▶ replicate ──rejected──▶ probe
 *     └──log compacted past next──▶ snapshot ──acknowledged──▶ replicate
 *                                            └──reported by the transport──▶ probe
 */
export type ProgressState = "probe" | "replicate" | "snapshot";

export interface FlowLimits {
  /** Appends in flight to one follower at most (replicate state). */
  inflightMessagesMax: number;
  /** Entry bytes in flight to one follower at most (replicate state); at least one append always goes. */
  inflightBytesMax: number;
}

export class Progress {
  state: ProgressState = "probe";
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Probe state: an append is out and unanswered. */
  private probeSent = false;
  /** Snapshot state: the index of the snapshot sent. */
  private pendingSnapshot = 0;
  private readonly inflights: Inflights;

  constructor(
    public match: number,
    public next: number,
    limits: FlowLimits,
  ) {
    this.inflights = new Inflights(limits);
  }

  /** Whether sending an append now would be wasted or unbounded. */
  get paused(): boolean {
    if (this.state === "probe") return this.probeSent;
    if (this.state === "snapshot") return true;
    return this.inflights.full;
  }

  /** An append whose last entry is `lastIndex` (with `bytes` of entry data) went out; none if it was empty. */
  sent(lastIndex: number, entryCount: number, bytes: number): void {
    if (this.state === "replicate") {
      if (entryCount === 0) return;
      assert(lastIndex >= this.next, () => `sent up to ${lastIndex}, next was ${this.next}`);
      this.next = lastIndex + 1;
      this.inflights.add(lastIndex, bytes);
    } else if (this.state === "probe") this.probeSent = true;
  }

  /** The follower matches up to `index`; false when that is old news. */
  acknowledge(index: number): boolean {
    this.probeSent = false;
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    this.inflights.freeThrough(index);
    // An acknowledgement proves where the follower's log stands: send ahead from there.
    if (this.state === "probe" || (this.state === "snapshot" && this.match >= this.pendingSnapshot))
      this.become("replicate");
    return true;
  }

  /**
   * The follower rejected the append after `rejectedIndex`; `hint` is the last index where the logs
   * may agree. False for a stale rejection (already matched past it, or not the probe in flight).
   */
  rejected(rejectedIndex: number, hint: number): boolean {
    if (this.state === "snapshot") return false; // the snapshot's answer (or its report) decides
    if (this.state === "replicate") {
      if (rejectedIndex <= this.match) return false;
      this.become("probe");
      this.next = Math.max(Math.min(rejectedIndex, hint + 1), this.match + 1);
      return true;
    }
    if (rejectedIndex !== this.next - 1) return false;
    this.next = Math.max(Math.min(rejectedIndex, hint + 1), this.match + 1);
    this.probeSent = false;
    return true;
  }

  /** The follower needs entries compacted away: a snapshot up to `index` went out. */
  snapshotSent(index: number): void {
    this.become("snapshot");
    this.pendingSnapshot = index;
  }

  /**
   * What the transport learned of the snapshot (etcd's ReportSnapshot): either way, probe from
   * where it would have left the follower, and wait for a heartbeat's answer before the next append.
   */
  snapshotReported(finished: boolean): void {
    if (this.state !== "snapshot") return;
    const next = finished ? this.pendingSnapshot + 1 : this.match + 1;
    this.become("probe");
    this.next = Math.max(next, this.match + 1);
    this.probeSent = true;
  }

  /** A heartbeat was answered: the follower is there, so a probe may go again; a full window frees a slot. */
  heartbeatAnswered(): void {
    this.recentActive = true;
    this.probeSent = false;
    // Appends lost in flight leave the window full and nothing acknowledging it: let one more go, whose
    // rejection turns the follower back to probing.
    if (this.state === "replicate" && this.inflights.full) this.inflights.freeFirst();
  }

  private become(state: ProgressState): void {
    this.state = state;
    this.probeSent = false;
    this.pendingSnapshot = 0;
    this.inflights.reset();
    if (state !== "snapshot") this.next = this.match + 1;
  }
}

/** Appends sent and not acknowledged, oldest first: their last indexes and entry bytes. */
class Inflights {
  private readonly lastIndexes: number[] = [];
  private readonly sizes: number[] = [];
  private start = 0;
  private bytes = 0;

  constructor(private readonly limits: FlowLimits) {
    assert(limits.inflightMessagesMax > 0 && limits.inflightBytesMax > 0, "inflight limits must be positive");
  }

  get full(): boolean {
    const count = this.lastIndexes.length - this.start;
    return count >= this.limits.inflightMessagesMax || (count > 0 && this.bytes >= this.limits.inflightBytesMax);
  }

  add(lastIndex: number, bytes: number): void {
    assert(!this.full, "an append sent through a full inflight window");
    this.lastIndexes.push(lastIndex);
    this.sizes.push(bytes);
    this.bytes += bytes;
  }

  freeThrough(index: number): void {
    while (this.start < this.lastIndexes.length && this.lastIndexes[this.start]! <= index) this.freeFirst();
  }

  freeFirst(): void {
    if (this.start === this.lastIndexes.length) return;
    this.bytes -= this.sizes[this.start]!;
    this.start++;
    // Compact once the freed head outgrows what is left: amortised O(1) per append.
    if (this.start > 64 && this.start * 2 > this.lastIndexes.length) {
      this.lastIndexes.splice(0, this.start);
      this.sizes.splice(0, this.start);
      this.start = 0;
    }
  }

  reset(): void {
    this.lastIndexes.length = 0;
    this.sizes.length = 0;
    this.start = 0;
    this.bytes = 0;
  }
}

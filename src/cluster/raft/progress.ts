/**
 * What a leader knows of one follower's log: `match`, the last index known to be the same as the
 * leader's, and `next`, the next index to send. Probing (after a start or a rejection) sends one
 * append and waits for its answer; replicating (after an acceptance) sends ahead optimistically.
 */
export class Progress {
  /** Heard from since the last CheckQuorum round. */
  recentActive = false;
  /** Probing with an append in flight: send nothing more until an answer or a heartbeat. */
  paused = false;
  private probing = true;

  constructor(
    public match: number,
    public next: number,
  ) {}

  /** An append of `count` entries from `next` went out. */
  sent(count: number): void {
    if (this.probing) this.paused = true;
    else this.next += count;
  }

  /** The follower matches up to `index`; false when that is old news. */
  acknowledge(index: number): boolean {
    this.paused = false;
    if (index <= this.match) return false;
    this.match = index;
    this.next = Math.max(this.next, index + 1);
    this.probing = false;
    return true;
  }

  /**
   * The follower rejected the append after `rejectedIndex`; `hint` is the last index where the logs
   * may agree. False for a stale rejection (already matched past it, or not the probe in flight).
   */
  rejected(rejectedIndex: number, hint: number): boolean {
    if (rejectedIndex <= this.match || (this.probing && rejectedIndex !== this.next - 1)) return false;
    this.next = Math.max(Math.min(rejectedIndex, hint + 1), this.match + 1);
    this.probing = true;
    this.paused = false;
    return true;
  }

  /** A snapshot up to `index` went out: wait for its answer, then go on after it. */
  snapshotSent(index: number): void {
    this.next = index + 1;
    this.probing = true;
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
  }
}

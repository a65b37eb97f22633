import { assert } from "../../errors.ts";

/**
 * The timestamp oracle of the meta group's leader (Percolator's, TiKV's TSO): hands out strictly
 * increasing timestamps — the cluster's revisions — in batches, from a window the group has
 * reserved ahead in its log, so that a leader's crash can never hand a timestamp out twice: the
 * next leader starts above everything reserved, and the rest of the old window is a gap.
 *
 * Pure: the caller proposes the reservations (`wanted`) and tells what was committed (`reserved`).
 * Two duties are the caller's, for the timestamps to stay linearizable across leaders:
 * - `lead` only once the new leader has applied every entry committed before its term (its first
 *   entry of the term applied): its reserved limit is then the highest any leader reserved.
 * - a batch from `take` is returned only after a ReadIndex round that began after the take
 *   confirms the leadership: a deposed leader that took from its old window would otherwise hand
 *   out smaller timestamps after its successor handed out larger ones.
 */
export class TimestampOracle {
  /** The next timestamp to hand out, and the highest one reserved (meaningful while leading). */
  private next = 1;
  private limit = 0;
  private reserving = false;
  private leading = false;
  /** The largest batch refused for want of reserved timestamps since the last reservation. */
  private wantedBatch = 0;

  /** `window`: how many timestamps a reservation adds (each one entry in the meta group's log). */
  constructor(private readonly window: number) {
    assert(Number.isInteger(window) && window >= 2, () => `a window of ${window} timestamps`);
  }

  /** This node leads the meta group now, whose reserved limit (applied) is `reservedLimit`. */
  lead(reservedLimit: number): void {
    this.leading = true;
    this.reserving = false;
    this.wantedBatch = 0;
    this.next = reservedLimit + 1;
    this.limit = reservedLimit;
  }

  /** This node no longer leads: it hands nothing out until it leads again. */
  follow(): void {
    this.leading = false;
    this.reserving = false;
  }

  /**
   * The first of `count` consecutive timestamps, or undefined when the reservation does not cover
   * them yet (a reservation is wanted: see `wanted`) or this node does not lead.
   */
  take(count: number): number | undefined {
    assert(Number.isInteger(count) && count >= 1, () => `${count} timestamps`);
    if (!this.leading) return undefined;
    if (this.next + count - 1 > this.limit) {
      this.wantedBatch = Math.max(this.wantedBatch, count);
      return undefined;
    }
    const first = this.next;
    this.next += count;
    return first;
  }

  /**
   * The limit to reserve now (propose it), or undefined: not leading, one reservation already under
   * way, or more than half a window left and no batch refused. Proposing early keeps `take` from
   * waiting for the log; a batch larger than what is left (or than a window) gets room for itself.
   */
  wanted(): number | undefined {
    const left = this.limit - this.next + 1;
    if (!this.leading || this.reserving || (left > this.window / 2 && left >= this.wantedBatch)) return undefined;
    this.reserving = true;
    return Math.max(this.limit, this.next - 1) + Math.max(this.window, this.wantedBatch);
  }

  /** A reservation was applied: the group's reserved limit is now `limit`. */
  reserved(limit: number): void {
    this.limit = limit;
    this.reserving = false;
    this.wantedBatch = 0;
  }

  /** The reservation proposed was not committed (the proposal was dropped): `wanted` may ask again. */
  reservationFailed(): void {
    this.reserving = false;
  }
}

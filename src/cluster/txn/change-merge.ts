import { assert } from "../../errors.ts";

/**
 * Merges the change feeds of several partitions into one in revision order (a watch across
 * partitions). Each partition pushes its changes as it applies them, and announces a resolved
 * timestamp: no change at or below it can still appear there (not one of a transaction still open,
 * nor of a write still waiting for its timestamp). Changes are handed out up to the lowest resolved
 * timestamp of all partitions, the watermark, in revision order (ties in the order pushed): no
 * change can arrive later that belongs before them.
 */
export class ChangeMerge<E extends { readonly revision: number }> {
  private readonly resolved = new Map<number, number>();
  private held: E[] = [];

  /** `partitions`: the partitions merged; `after`: the revision the feed starts after. */
  constructor(partitions: readonly number[], after: number) {
    for (const partition of partitions) this.resolved.set(partition, after);
  }

  /** Changes `partition` applied, in the order it applied them; each above its resolved timestamp. */
  push(partition: number, events: readonly E[]): void {
    const floor = this.resolvedOf(partition);
    for (const event of events) {
      assert(
        event.revision > floor,
        () => `partition ${partition} pushed a change at ${event.revision}, at or below ${floor}`,
      );
      this.held.push(event);
    }
  }

  /** `partition` promises no change at or below `ts` will come (a resolved timestamp only rises). */
  resolve(partition: number, ts: number): void {
    this.resolved.set(partition, Math.max(this.resolvedOf(partition), ts));
  }

  /** The revision up to which every change is known: the lowest resolved timestamp. */
  get watermark(): number {
    return Math.min(...this.resolved.values());
  }

  /** The changes at or below the watermark not handed out yet, in revision order (a stable sort). */
  take(): E[] {
    const watermark = this.watermark;
    const out = this.held.filter((event) => event.revision <= watermark).sort((a, b) => a.revision - b.revision);
    this.held = this.held.filter((event) => event.revision > watermark);
    return out;
  }

  /**
   * What `partition` may no longer push at or below. Never below the watermark (the lowest of
   * them), so nothing can arrive below a change handed out.
   */
  private resolvedOf(partition: number): number {
    const resolved = this.resolved.get(partition);
    assert(resolved !== undefined, () => `partition ${partition} is not merged here`);
    return resolved;
  }
}

import { assert } from "../../errors.ts";
import type { WatchBatch } from "./watch-hub.ts";

/** What one queued event is counted as, beyond its key and values (bounds are approximate, not exact). */
const EVENT_OVERHEAD_BYTES = 32;

/** Batches in revision order, with running counts of events and bytes. */
export class BatchQueue {
  private readonly batches: WatchBatch[] = [];
  private head = 0;
  private sizes: number[] = [];
  events = 0;
  bytes = 0;

  get length(): number {
    return this.batches.length - this.head;
  }

  push(batch: WatchBatch, withPrevious: boolean): void {
    const last = this.batches[this.batches.length - 1];
    assert(this.length === 0 || last!.revision < batch.revision, "watch batches must be queued in revision order");
    const bytes = batchBytes(batch, withPrevious);
    this.batches.push(batch);
    this.sizes.push(bytes);
    this.events += batch.events.length;
    this.bytes += bytes;
  }

  peek(): WatchBatch | undefined {
    return this.batches[this.head];
  }

  shift(): WatchBatch | undefined {
    const batch = this.batches[this.head];
    if (batch === undefined) return undefined;
    this.events -= batch.events.length;
    this.bytes -= this.sizes[this.head]!;
    this.head++;
    // Compact now and then, so that shifting stays O(1) amortized and the array does not grow.
    if (this.head >= 1_024 && this.head * 2 >= this.batches.length) {
      this.batches.splice(0, this.head);
      this.sizes.splice(0, this.head);
      this.head = 0;
    }
    return batch;
  }

  clear(): void {
    this.batches.length = 0;
    this.sizes = [];
    this.head = 0;
    this.events = 0;
    this.bytes = 0;
  }
}

export function batchBytes(batch: WatchBatch, withPrevious: boolean): number {
  let bytes = 0;
  for (const event of batch.events) {
    bytes += EVENT_OVERHEAD_BYTES + event.key.length * 2 + (event.value?.byteLength ?? 0);
    if (withPrevious) bytes += event.prevValue?.byteLength ?? 0;
  }
  return bytes;
}

import { assert } from "../../errors.ts";
import { toIndexKey } from "../mvcc/key-order.ts";
import type { ChangeEvent, HistoryChange, ReadView } from "../mvcc/store.ts";
import { BatchQueue, type QueueMeter } from "./batch-queue.ts";
import type { WatchEvent, WatchSink } from "./watch-hub.ts";

/** One registered watcher's state (the hub's side of a Watcher). */
export class WatcherState {
  readonly low: string;
  readonly high: string | undefined;
  /** Set when the range is a single key: its index key. */
  readonly key: string | undefined;
  readonly queue: BatchQueue;
  live = false;
  ended = false;
  /** Catching up: the revision through which changes have been read from the store. */
  caughtUpTo = 0;

  constructor(
    readonly start: string,
    readonly end: string | undefined,
    readonly prevValue: boolean,
    /** Events before this revision are not for this watcher. */
    readonly fromRevision: number,
    private readonly storeRevision: () => number,
    readonly sink: WatchSink,
    meter: QueueMeter | undefined,
  ) {
    this.low = toIndexKey(start);
    this.high = end === undefined ? undefined : toIndexKey(end);
    assert(this.high === undefined || this.low < this.high, "a watch range must not be empty");
    this.key = end === `${start}\0` ? this.low : undefined;
    this.queue = new BatchQueue(meter);
  }

  covers(indexKey: string): boolean {
    return indexKey >= this.low && (this.high === undefined || indexKey < this.high);
  }

  resumeRevision(): number {
    const head = this.queue.peek();
    if (head) return head.revision;
    if (!this.live) return this.caughtUpTo + 1;
    return Math.max(this.fromRevision, this.storeRevision() + 1);
  }
}

export function toWatchEvent(change: HistoryChange, withPrevious: boolean): WatchEvent {
  const event: WatchEvent = {
    type: change.value === null ? "delete" : "put",
    key: change.key,
    value: change.value ?? undefined,
    revision: change.revision,
    createRevision: change.createRevision,
    version: change.version,
  };
  if (withPrevious) event.prevValue = change.previous;
  return event;
}

/** A live event with the key's counters, read at its revision (the store's current one). */
export function withCounters(store: ReadView, event: ChangeEvent): HistoryChange {
  if (event.value === null) return { ...event, createRevision: 0, version: 0 };
  const [record] = store.readRecords([event.key], event.revision);
  return { ...event, createRevision: record!.createRevision, version: record!.version };
}

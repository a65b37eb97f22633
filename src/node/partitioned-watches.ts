import type { PartitionAccess, TxnCoordinator } from "../cluster/txn/coordinator.ts";
import { HomeKvError } from "../errors.ts";
import { compareKeys } from "../storage/mvcc/key-order.ts";
import type { HistoryChange } from "../storage/mvcc/store.ts";
import { batchBytes } from "../storage/watch/batch-queue.ts";
import type { WatchBatch, WatchEnd, Watcher, Watches, WatchOptions, WatchSink } from "../storage/watch/watch-hub.ts";
import { WATCH_DEFAULTS } from "../storage/watch/watch-hub.ts";
import { toWatchEvent } from "../storage/watch/watcher-state.ts";
import { delay, realTimers, type Timers } from "../timers.ts";

/** Changes one partition answers per call, and the least of the queue's bytes it may fill. */
const PAGE_CHANGES_MAX = 1_000;
const PAGE_BYTES_MIN = 256 << 10;

export interface PartitionedWatchesOptions {
  access: Pick<PartitionAccess, "changes">;
  coordinator: Pick<TxnCoordinator, "timestamp" | "get">;
  /** The cluster's partition count (throws while this node cannot route). */
  partitions: () => number;
  /** How often a watcher asks the partitions for news when it has caught up. */
  pollMs: number;
  queueEventsMax?: number;
  queueBytesMax?: number;
  timers?: Timers;
}

/**
 * Watches on a partitioned cluster: each watcher asks every partition for the changes of its range
 * after the revision it has reached, up to the partition's resolved timestamp (no commit can still
 * appear at or below it: PartitionGroup.changes), and delivers, in revision order and each revision's
 * changes together, what every partition has resolved: up to the lowest of their resolved
 * timestamps. So no change ever comes after a later one, and a watch resumed from a revision misses
 * nothing. A watcher that has caught up asks again every `pollMs` (changes reach it within about
 * that): partitions do not push. A lock that holds a partition's resolved timestamp back is
 * resolved as a read would (its transaction rolled forward, or back once its TTL is past).
 */
export function partitionedWatches(options: PartitionedWatchesOptions): Watches {
  const watchers = new Set<PartitionedWatcher>();
  let closed = false;
  return {
    watch(watch, sink) {
      if (closed) throw new HomeKvError("E_UNAVAILABLE", "the server is stopping");
      const watcher = new PartitionedWatcher(options, watch, sink, () => watchers.delete(watcher));
      watchers.add(watcher);
      return watcher;
    },
    get size() {
      return watchers.size;
    },
    close() {
      closed = true;
      for (const watcher of [...watchers])
        watcher.end("closed", (resume) => `the server is stopping; watch again from revision ${resume} to continue`);
    },
  };
}

class PartitionedWatcher implements Watcher {
  private readonly queue: WatchBatch[] = [];
  private queuedEvents = 0;
  private queuedBytes = 0;
  /** Every change up to it has been queued (or taken). */
  private delivered: number;
  private done = false;
  private readonly timers: Timers;
  private readonly eventsMax: number;
  private readonly bytesMax: number;
  /** Wakes the run loop waiting for room in the queue. */
  private roomWaiter: (() => void) | undefined;

  constructor(
    private readonly options: PartitionedWatchesOptions,
    private readonly watch: WatchOptions,
    private readonly sink: WatchSink,
    private readonly forget: () => void,
  ) {
    this.timers = options.timers ?? realTimers;
    this.eventsMax = options.queueEventsMax ?? WATCH_DEFAULTS.queueEventsMax;
    this.bytesMax = options.queueBytesMax ?? WATCH_DEFAULTS.queueBytesMax;
    this.delivered = Math.max(0, watch.startRevision - 1);
    this.run().catch((error: unknown) => {
      if (error instanceof HomeKvError && error.code === "E_COMPACTED")
        this.end("compacted", () => `the watch fell behind the retained history: ${error.message}`);
      else
        this.end(
          "closed",
          (resume) =>
            `the watch stopped (${error instanceof Error ? error.message : String(error)}); watch again from revision ${resume} to continue`,
        );
    });
  }

  get pendingEvents(): number {
    return this.queuedEvents;
  }

  get resumeRevision(): number {
    return this.queue[0]?.revision ?? this.delivered + 1;
  }

  take(): WatchBatch | undefined {
    const batch = this.queue.shift();
    if (batch) {
      const bytes = batchBytes(batch, this.watch.prevValue);
      this.queuedEvents -= batch.events.length;
      this.queuedBytes -= bytes;
      this.watch.meter?.change(-bytes);
      // Room again: the run loop, held while the queue was full, goes on.
      if (this.roomWaiter && !this.full()) this.roomWaiter();
    }
    return batch;
  }

  peek(): WatchBatch | undefined {
    return this.queue[0];
  }

  close(): void {
    this.finish();
  }

  overflow(why: string): void {
    this.end("overflow", (resume) => `${why}; watch again from revision ${resume} to continue`);
  }

  /** Ends the watcher (once, never after `close`), telling its sink why and where to resume. */
  end(reason: WatchEnd["reason"], message: (resumeRevision: number) => string): void {
    if (this.done) return;
    const resumeRevision = this.resumeRevision;
    this.finish();
    this.sink.end({ reason, message: message(resumeRevision), resumeRevision });
  }

  /** Stops the run loop and gives back what the queue held to the server's budget. */
  private finish(): void {
    if (this.done) return;
    this.done = true;
    this.forget();
    this.watch.meter?.change(-this.queuedBytes);
    this.roomWaiter?.();
  }

  /** Whether the queue holds as much as it may: the loop asks the partitions for no more until it has room. */
  private full(): boolean {
    return this.queuedEvents >= this.eventsMax || this.queuedBytes >= this.bytesMax;
  }

  private async run(): Promise<void> {
    const { access, coordinator } = this.options;
    // From the next commit: the revisions up to a fresh timestamp are the past.
    if (this.watch.startRevision === 0) this.delivered = await coordinator.timestamp();
    const partitions = this.options.partitions();
    const range = { start: this.watch.start, ...(this.watch.end === undefined ? {} : { end: this.watch.end }) };
    // Each partition's page is a share of the queue's bytes: what waits here stays bounded too.
    const size = {
      limit: PAGE_CHANGES_MAX,
      bytesMax: Math.max(PAGE_BYTES_MIN, Math.floor(this.bytesMax / partitions)),
      withPrevious: this.watch.prevValue,
    };
    const reached = Array.from({ length: partitions }, () => this.delivered);
    const waiting: HistoryChange[][] = Array.from({ length: partitions }, () => []);
    while (!this.done) {
      // Back-pressure: nothing more is asked for while the client has not taken what is queued.
      if (this.full()) {
        await new Promise<void>((resolve) => {
          this.roomWaiter = () => {
            this.roomWaiter = undefined;
            resolve();
          };
        });
        continue;
      }
      const ts = await coordinator.timestamp();
      let more = false;
      const locked: string[] = [];
      await Promise.all(
        reached.map(async (after, partition) => {
          // A partition whose page still waits (others lag behind it) is not asked for another.
          if (waiting[partition]!.length > 0) return;
          const page = await access.changes(partition, range, after, ts, size);
          waiting[partition] = [...page.changes];
          reached[partition] = Math.max(after, page.through);
          more ||= page.through < ts && page.locks.length === 0;
          locked.push(...page.locks.map(({ key }) => key));
        }),
      );
      if (this.done) return;
      this.deliver(Math.min(...reached), waiting);
      // A read of the keys locked resolves their locks (waiting for them as a reader does).
      if (locked.length > 0) await coordinator.get([...new Set(locked)], ts).catch(() => {});
      if (!more) await delay(this.options.pollMs, this.timers);
    }
  }

  /**
   * Queues the waiting changes up to `through`, in revision order, each revision's changes in one
   * batch in key order, until the queue is full (one batch at least, however large): what is left
   * waits for the client to take.
   */
  private deliver(through: number, waiting: HistoryChange[][]): void {
    const wasEmpty = this.queue.length === 0;
    while (!this.full() || this.queue.length === 0) {
      // The lowest revision waiting at or below `through`, from every partition (their changes are in revision order).
      let revision = Number.POSITIVE_INFINITY;
      for (const changes of waiting) if (changes[0] && changes[0].revision < revision) revision = changes[0].revision;
      if (revision > through) {
        this.delivered = Math.max(this.delivered, through);
        break;
      }
      const changes: HistoryChange[] = [];
      for (const list of waiting) while (list[0]?.revision === revision) changes.push(list.shift()!);
      changes.sort((a, b) => compareKeys(a.key, b.key));
      const batch = { revision, events: changes.map((change) => toWatchEvent(change, this.watch.prevValue)) };
      const bytes = batchBytes(batch, this.watch.prevValue);
      this.queue.push(batch);
      this.queuedEvents += batch.events.length;
      this.queuedBytes += bytes;
      this.watch.meter?.change(bytes);
      this.delivered = revision;
    }
    if (wasEmpty && this.queue.length > 0) this.sink.wake();
  }
}

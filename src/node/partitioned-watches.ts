import type { PartitionAccess, TxnCoordinator } from "../cluster/txn/coordinator.ts";
import { HomeKvError } from "../errors.ts";
import { compareKeys } from "../storage/mvcc/key-order.ts";
import type { HistoryChange } from "../storage/mvcc/store.ts";
import { batchBytes } from "../storage/watch/batch-queue.ts";
import type { WatchBatch, WatchEnd, Watcher, Watches, WatchOptions, WatchSink } from "../storage/watch/watch-hub.ts";
import { WATCH_DEFAULTS } from "../storage/watch/watch-hub.ts";
import { toWatchEvent } from "../storage/watch/watcher-state.ts";
import { realTimers, type Timers } from "../timers.ts";

/** Changes one partition answers per call. */
const PAGE_CHANGES_MAX = 1_000;

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

  constructor(
    private readonly options: PartitionedWatchesOptions,
    private readonly watch: WatchOptions,
    private readonly sink: WatchSink,
    private readonly forget: () => void,
  ) {
    this.timers = options.timers ?? realTimers;
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
      this.queuedEvents -= batch.events.length;
      this.queuedBytes -= batchBytes(batch, this.watch.prevValue);
    }
    return batch;
  }

  peek(): WatchBatch | undefined {
    return this.queue[0];
  }

  close(): void {
    this.done = true;
    this.forget();
  }

  overflow(why: string): void {
    this.end("overflow", (resume) => `${why}; watch again from revision ${resume} to continue`);
  }

  /** Ends the watcher (once, never after `close`), telling its sink why and where to resume. */
  end(reason: WatchEnd["reason"], message: (resumeRevision: number) => string): void {
    if (this.done) return;
    this.done = true;
    this.forget();
    const resumeRevision = this.resumeRevision;
    this.sink.end({ reason, message: message(resumeRevision), resumeRevision });
  }

  private async run(): Promise<void> {
    const { access, coordinator } = this.options;
    // From the next commit: the revisions up to a fresh timestamp are the past.
    if (this.watch.startRevision === 0) this.delivered = await coordinator.timestamp();
    const partitions = this.options.partitions();
    const range = { start: this.watch.start, ...(this.watch.end === undefined ? {} : { end: this.watch.end }) };
    const reached = Array.from({ length: partitions }, () => this.delivered);
    const waiting: HistoryChange[][] = Array.from({ length: partitions }, () => []);
    while (!this.done) {
      const ts = await coordinator.timestamp();
      let more = false;
      const locked: string[] = [];
      await Promise.all(
        reached.map(async (after, partition) => {
          const page = await access.changes(partition, range, after, ts, PAGE_CHANGES_MAX);
          waiting[partition]!.push(...page.changes);
          reached[partition] = Math.max(after, page.through);
          more ||= page.changes.length === PAGE_CHANGES_MAX;
          locked.push(...page.locks.map(({ key }) => key));
        }),
      );
      if (this.done) return;
      this.deliver(Math.min(...reached), waiting);
      // A read of the keys locked resolves their locks (waiting for them as a reader does).
      if (locked.length > 0) await coordinator.get([...new Set(locked)], ts).catch(() => {});
      if (!more) await new Promise((resolve) => this.timers.after(this.options.pollMs, () => resolve(undefined)));
    }
  }

  /** Queues every waiting change up to `through`, each revision's changes in one batch, in key order. */
  private deliver(through: number, waiting: HistoryChange[][]): void {
    if (through <= this.delivered) return;
    const due: HistoryChange[] = [];
    for (const [partition, changes] of waiting.entries()) {
      const cut = changes.findIndex((change) => change.revision > through);
      due.push(...(cut === -1 ? changes : changes.slice(0, cut)));
      waiting[partition] = cut === -1 ? [] : changes.slice(cut);
    }
    due.sort((a, b) => a.revision - b.revision || compareKeys(a.key, b.key));
    const wasEmpty = this.queue.length === 0;
    const eventsMax = this.options.queueEventsMax ?? WATCH_DEFAULTS.queueEventsMax;
    const bytesMax = this.options.queueBytesMax ?? WATCH_DEFAULTS.queueBytesMax;
    for (let i = 0; i < due.length; ) {
      const revision = due[i]!.revision;
      const events = [];
      for (; i < due.length && due[i]!.revision === revision; i++)
        events.push(toWatchEvent(due[i]!, this.watch.prevValue));
      const batch = { revision, events };
      const bytes = batchBytes(batch, this.watch.prevValue);
      // An empty queue takes any batch: a revision larger than the limits must not block the watch forever.
      if (
        this.queue.length > 0 &&
        (this.queuedEvents + events.length > eventsMax || this.queuedBytes + bytes > bytesMax)
      ) {
        this.overflow(`the watcher fell behind: over ${eventsMax} events or ${bytesMax} bytes waited for the client`);
        return;
      }
      this.queue.push(batch);
      this.queuedEvents += events.length;
      this.queuedBytes += bytes;
    }
    this.delivered = through;
    if (wasEmpty && this.queue.length > 0) this.sink.wake();
  }
}

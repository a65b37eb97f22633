import { assert, HomeKvError } from "../../errors.ts";
import { compareIndexKeys, toIndexKey } from "../mvcc/key-order.ts";
import type { ChangeEvent, ChangePage, HistoryChange, ReadView } from "../mvcc/store.ts";
import { batchBytes, type QueueMeter } from "./batch-queue.ts";
import { toWatchEvent, WatcherState, withCounters } from "./watcher-state.ts";

/**
 * Watchers of key ranges, fed by the store. The hub is made before the store (its `publish` is the
 * store's `onEvents`, so that restore and replay need nothing else) and attached to it once it exists.
 *
 * A watcher starting at a past revision first catches up from the store's retained versions, a page
 * at a time and only when its client has taken what came before; it goes live in the same call that
 * reads the last page, up to the store's current revision, so that every later `publish` is news to
 * it (no gap, no repeat). A live watcher queues what `publish` gives it until its client takes it;
 * past `queueEventsMax` or `queueBytesMax` it is ended (`overflow`) with the revision to resume from;
 * its owner may end it so too (`overflow`: the server's QueueBudget, when all the queues together
 * hold too much).
 * Nothing here waits: a slow watcher costs the store one queue push per event and never blocks it.
 *
 *   watch [b, d) from revision 2; the store is at 3:
 *     rev 1 put a   rev 2 put b   rev 3 put c  (history)  →  take: {2: b}, {3: c}  (catch-up)
 *     rev 4 put b   rev 5 put x               (publish)  →  take: {4: b}          (live; x not in range)
 */
export interface WatchHub extends Watches {
  /** The store's `onEvents`: called after each applied command, in revision order. */
  readonly publish: (revision: number, events: readonly ChangeEvent[]) => void;
  /**
   * The store's `eventsWanted`: whether `publish` would look at events now (a watcher is live; one
   * catching up reads the store instead, up to its revision).
   */
  readonly listening: () => boolean;
  /** Once, with the store whose `onEvents` is `publish`. */
  attach(store: ReadView): void;
  /**
   * The attached store's state was replaced by a newer one (a member installed its leader's
   * snapshot) that was at `previousRevision`: the revisions in between were never published. Every
   * live watcher goes back to catching up from the store, after what it has had, so it gets them
   * from the new store's history, or ends `compacted` when that history does not reach back so far.
   */
  storeReplaced(previousRevision: number): void;
}

/** The watchers' side of the hub: what a database offers its server. */
export interface Watches {
  /** Registers a watcher; E_COMPACTED when `startRevision` is older than the retained history. */
  watch(options: WatchOptions, sink: WatchSink): Watcher;
  /** Watchers registered now (metrics). */
  readonly size: number;
  /** Ends every watcher (`closed`); later watches are refused. Idempotent. */
  close(): void;
}

export interface WatchOptions {
  /** The range [start, end): a key is [key, key + "\0"); undefined end: to the last key. */
  start: string;
  end?: string;
  /** The first revision to send; 0: from the next commit. */
  startRevision: number;
  /** Send each event's previous value. */
  prevValue: boolean;
  /** Told what the watcher's queue holds of its own as it changes (QueueBudget's account). */
  meter?: QueueMeter;
}

export interface WatchEvent {
  type: "put" | "delete";
  key: string;
  /** Undefined for a delete. */
  value: Uint8Array | undefined;
  revision: number;
  /** The key's create revision and version after the change (0 for a delete). */
  createRevision: number;
  version: number;
  /** Only when asked for: the value before the change; undefined when the key did not exist. */
  prevValue?: Uint8Array | undefined;
}

/** The events of one revision that fall in the watcher's range, in key order. */
export interface WatchBatch {
  revision: number;
  events: WatchEvent[];
}

/** Why the hub ended a watcher; `resumeRevision` is the first revision the client did not take. */
export interface WatchEnd {
  reason: "overflow" | "compacted" | "closed";
  message: string;
  resumeRevision: number;
}

/** Where a watcher's news goes (the stream that writes it). Called synchronously: must not block. */
export interface WatchSink {
  /** Batches are waiting to be taken (called when the queue stops being empty). */
  wake(): void;
  /** The watcher was ended by the hub; called at most once, never after `close`. */
  end(end: WatchEnd): void;
}

export interface Watcher {
  /** The next revision's batch, or undefined when none is waiting (or the watcher has ended). */
  take(): WatchBatch | undefined;
  /** The batch `take` would return, left in the queue (a message is taken once it goes out). */
  peek(): WatchBatch | undefined;
  /** Events queued and not taken. */
  readonly pendingEvents: number;
  /** The first revision not taken yet: where a new watch would resume. */
  readonly resumeRevision: number;
  /** Unregisters (the client went away); idempotent. */
  close(): void;
  /** Ends the watcher as fallen behind (`overflow`), `why` first in its message; nothing if it has ended. */
  overflow(why: string): void;
}

export interface WatchHubOptions {
  /** Events a watcher may hold for its client before it is ended. */
  queueEventsMax?: number;
  /** Bytes (keys and values, approximately) a watcher may hold for its client before it is ended. */
  queueBytesMax?: number;
  /** Changes read from the store per catch-up page. */
  catchUpPageEventsMax?: number;
  /** A sink that threw: a bug, reported rather than thrown into the store's apply. */
  onBug?: (error: unknown) => void;
}

export const WATCH_DEFAULTS = {
  queueEventsMax: 10_000,
  queueBytesMax: 16 * 1024 * 1024,
  catchUpPageEventsMax: 1_000,
};

export function createWatchHub(options: WatchHubOptions = {}): WatchHub {
  const limits = { ...WATCH_DEFAULTS, ...options };
  assert(
    limits.queueEventsMax > 0 && limits.queueBytesMax > 0 && limits.catchUpPageEventsMax > 0,
    "watch limits must be positive",
  );
  const onBug = options.onBug ?? ((error: unknown) => console.error(error));
  /** Live watchers of one key (the common case), by index key: found in O(1) per event. */
  const byKey = new Map<string, Set<WatcherState>>();
  /** Live watchers of wider ranges: each event is checked against each. */
  const ranged = new Set<WatcherState>();
  const all = new Set<WatcherState>();
  let store: ReadView | undefined;
  let closed = false;

  const notify = (watcher: WatcherState, call: (sink: WatchSink) => void) => {
    try {
      call(watcher.sink);
    } catch (error) {
      onBug(error);
    }
  };

  const unregister = (watcher: WatcherState) => {
    all.delete(watcher);
    unindex(watcher);
  };

  /** Live watchers are found by key or range; a watcher catching up is not. */
  const unindex = (watcher: WatcherState) => {
    ranged.delete(watcher);
    const keyed = watcher.key === undefined ? undefined : byKey.get(watcher.key);
    keyed?.delete(watcher);
    if (keyed?.size === 0) byKey.delete(watcher.key!);
  };

  const goLive = (watcher: WatcherState) => {
    watcher.live = true;
    if (watcher.key === undefined) ranged.add(watcher);
    else {
      let keyed = byKey.get(watcher.key);
      if (keyed === undefined) byKey.set(watcher.key, (keyed = new Set()));
      keyed.add(watcher);
    }
  };

  const end = (
    watcher: WatcherState,
    reason: WatchEnd["reason"],
    message: (resumeRevision: number) => string,
  ): void => {
    if (watcher.ended) return;
    const resumeRevision = watcher.resumeRevision();
    watcher.ended = true;
    watcher.queue.clear();
    unregister(watcher);
    notify(watcher, (sink) => sink.end({ reason, message: message(resumeRevision), resumeRevision }));
  };

  /** Reads the next catch-up page; goes live when it reaches the current revision. */
  const catchUp = (watcher: WatcherState) => {
    let page: ChangePage;
    try {
      page = store!.changes({
        start: watcher.start,
        end: watcher.end,
        after: watcher.caughtUpTo,
        limit: limits.catchUpPageEventsMax,
      });
    } catch (error) {
      if (!(error instanceof HomeKvError && error.code === "E_COMPACTED")) throw error;
      end(watcher, "compacted", () => `the watch fell behind the retained history: ${error.message}`);
      return;
    }
    let batch: WatchBatch | undefined;
    for (const change of page.changes) {
      if (batch?.revision !== change.revision) {
        if (batch) watcher.queue.push(batch, watcher.prevValue);
        batch = { revision: change.revision, events: [] };
      }
      batch.events.push(toWatchEvent(change, watcher.prevValue));
    }
    if (batch) watcher.queue.push(batch, watcher.prevValue);
    watcher.caughtUpTo = page.through;
    if (page.through === store!.revision) goLive(watcher);
  };

  const listening = () => ranged.size > 0 || byKey.size > 0;
  const publish = (revision: number, events: readonly ChangeEvent[]) => {
    if (!listening()) return;
    const batches = new Map<WatcherState, WatchEvent[]>();
    for (const event of events) {
      const indexKey = toIndexKey(event.key);
      // One event object for every watcher of the key (one with the previous value, one without):
      // a queued event then costs each watcher a slot, not an object of its own.
      let full: HistoryChange | undefined;
      const shared: [WatchEvent?, WatchEvent?] = [];
      const deliver = (watcher: WatcherState) => {
        if (revision < watcher.fromRevision) return;
        full ??= withCounters(store!, event);
        const flavour = watcher.prevValue ? 1 : 0;
        let list = batches.get(watcher);
        if (list === undefined) batches.set(watcher, (list = []));
        list.push((shared[flavour] ??= toWatchEvent(full, watcher.prevValue)));
      };
      const keyed = byKey.get(indexKey);
      if (keyed) for (const watcher of keyed) deliver(watcher);
      for (const watcher of ranged) if (watcher.covers(indexKey)) deliver(watcher);
    }
    for (const [watcher, list] of batches) {
      if (watcher.ended) continue; // ended by a sink during this fan-out
      // A txn writes its keys in request order; a batch goes out in key order, as catch-up sends it.
      if (list.length > 1) list.sort((a, b) => compareIndexKeys(toIndexKey(a.key), toIndexKey(b.key)));
      const batch = { revision, events: list };
      const queue = watcher.queue;
      const events = queue.events + list.length;
      const bytes = queue.bytes + batchBytes(batch, watcher.prevValue);
      // An empty queue takes any batch: a revision larger than the limits must not block the watch forever.
      if (queue.length > 0 && (events > limits.queueEventsMax || bytes > limits.queueBytesMax)) {
        end(
          watcher,
          "overflow",
          (resume) =>
            `the watcher fell behind: ${events} events (${bytes} bytes) waited for the client, over the limit of ` +
            `${limits.queueEventsMax} events or ${limits.queueBytesMax} bytes; watch again from revision ${resume} to continue`,
        );
        continue;
      }
      const wasEmpty = queue.length === 0;
      queue.push(batch, watcher.prevValue);
      if (wasEmpty) notify(watcher, (sink) => sink.wake());
    }
  };

  return {
    publish,
    listening,
    attach(attached) {
      assert(store === undefined || store === attached, "a watch hub serves one store");
      store = attached;
    },
    watch(watchOptions, sink) {
      assert(store !== undefined, "watch before the hub is attached to its store");
      if (closed) throw new HomeKvError("E_UNAVAILABLE", "the server is stopping: no new watches");
      const { start, end: rangeEnd, startRevision, prevValue } = watchOptions;
      assert(Number.isSafeInteger(startRevision) && startRevision >= 0, () => `bad start revision ${startRevision}`);
      const current = store.revision;
      // Changes after revision R are complete only while R is readable (store.changes says why).
      if (startRevision > 0 && startRevision <= current && startRevision - 1 < store.compactedRevision) {
        throw new HomeKvError(
          "E_COMPACTED",
          `start revision ${startRevision} is compacted: the oldest revision a watch can start from is ${store.compactedRevision + 1}`,
        );
      }
      const fromRevision = startRevision === 0 ? current + 1 : startRevision;
      const watcher = new WatcherState(
        start,
        rangeEnd,
        prevValue,
        fromRevision,
        () => store!.revision,
        sink,
        watchOptions.meter,
      );
      all.add(watcher);
      if (startRevision > 0 && startRevision <= current) {
        watcher.caughtUpTo = startRevision - 1;
        watcher.live = false; // catch-up pages are read by `take`, when the client is ready for them
      } else goLive(watcher);
      const next = () => {
        if (watcher.ended) return undefined;
        if (watcher.queue.length === 0 && !watcher.live) catchUp(watcher);
        return watcher.queue;
      };
      return {
        take: () => next()?.shift(),
        peek: () => next()?.peek(),
        get pendingEvents() {
          return watcher.queue.events;
        },
        get resumeRevision() {
          return watcher.resumeRevision();
        },
        close: () => {
          if (watcher.ended) return;
          watcher.ended = true;
          watcher.queue.clear();
          unregister(watcher);
        },
        overflow: (why) =>
          end(watcher, "overflow", (resume) => `${why}; watch again from revision ${resume} to continue`),
      };
    },
    storeReplaced(previousRevision) {
      for (const watcher of all) {
        if (watcher.ended || !watcher.live) continue; // one catching up reads the new store by itself
        const after = Math.max(previousRevision, watcher.fromRevision - 1);
        if (after >= store!.revision) continue; // nothing it should have had was skipped
        unindex(watcher);
        watcher.live = false;
        watcher.caughtUpTo = after;
        if (watcher.queue.length === 0) notify(watcher, (sink) => sink.wake());
      }
    },
    get size() {
      return all.size;
    },
    close() {
      closed = true;
      for (const watcher of [...all])
        end(watcher, "closed", (resume) => `the server is stopping; watch again from revision ${resume} to continue`);
    },
  };
}

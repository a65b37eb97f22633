import { assert, describeError } from "../../errors.ts";
import { realTimers } from "../../timers.ts";
import { toRecord } from "../mvcc/range-reads.ts";
import { missingRecord, StoreCore } from "../mvcc/store-core.ts";
import type {
  ChangeEvent,
  ChangePage,
  KeyChain,
  MvccStore,
  ScanOptions,
  ScanPage,
  StoreOptions,
  StoreStats,
} from "../mvcc/store-types.ts";
import type { Version } from "../mvcc/version-chain.ts";
import type { KeyRecord, WriteOp } from "../ops.ts";
import type { Entry, KeyRange } from "./entry.ts";
import { keyBytes, keyText } from "./key-bytes.ts";
import { KeyQueue } from "./key-queue.ts";
import { MEMTABLE_BYTES_DEFAULT, Memtable } from "./memtable.ts";
import { changesInRuns, dumpRuns, scanRuns } from "./run-reads.ts";
import { NO_LEVELS, type RangeRun, type RunSource } from "./runs.ts";
import { type BloomHash, keyHash } from "./table/bloom.ts";

/**
 * Writes a frozen memtable where the levels will read it (a table), and resolves once the store's
 * RunSource gives that table: the store then stops reading the memtable. Frozen memtables are
 * handed over one at a time, oldest first, so that the levels always hold older data than the
 * memtables still read. A rejected flush leaves the memtable read as before, and is tried again
 * after FLUSH_RETRY_MS (or at the next freeze, or `flushAll`): writes may be stopped waiting for
 * it. `at` is where the store stood when the memtable was frozen.
 */
export type FlushHook = (memtable: Memtable, at: FlushPoint) => Promise<void>;

/**
 * Where the store stood at a command boundary: its revision and compacted revision, its live keys
 * and their value bytes. When a memtable is frozen, every command up to `revision` has its versions
 * in it or in older runs; a store that starts from those runs starts here (FlsmOptions.start).
 */
export interface FlushPoint {
  readonly revision: number;
  readonly compactedRevision: number;
  readonly keys: number;
  readonly valueBytes: number;
}

export interface FlsmOptions extends StoreOptions {
  /** Heap bytes of versions (Memtable.bytes) at which the memtable is frozen and a new one started. */
  memtableBytes?: number;
  /** The runs below the memtables (the levels); none by default. */
  levels?: RunSource;
  /** Where frozen memtables go; without one they stay in memory, read like tables. */
  flush?: FlushHook;
  /** Where a failed flush is reported. */
  report?: (line: string) => void;
  /** Called once each flush has settled, its memtable gone (or kept, on a failure): the backlog moved. */
  flushSettled?: () => void;
  /** The point the levels were flushed up to, when the store starts from them; an empty store otherwise. */
  start?: FlushPoint;
}

export { MEMTABLE_BYTES_DEFAULT };
export const FLUSH_RETRY_MS = 1_000;

/** What the engine holds in memory besides the store's counters (tests and metrics). */
export interface MemtableStats {
  activeBytes: number;
  /** Frozen memtables not flushed yet (still read). */
  frozen: number;
  flushes: number;
  /** Key and value bytes of every version written (write amplification's denominator). */
  userBytes: number;
  /** Why the last flush failed, until one succeeds. */
  flushFailure?: string;
}

export function createFlsmStore(options: FlsmOptions = {}): FlsmStore {
  return new FlsmStore(options);
}

/**
 * The MVCC store of the fragmented LSM engine: the same contract as the memory engine (store.ts),
 * over runs instead of an index of every key. Runs, newest first: the memtable (writes), frozen
 * memtables waiting for their flush, then the levels' tables (RunSource).
 *
 * - A point read asks the runs in that order and stops at the first holding a version at or below
 *   its revision; `apply` reads each written key's previous version (its counters, watch's
 *   previous value) the same way.
 * - A scan merges the runs of its range and takes each key's newest visible version.
 * - GC compacts the memtable only (frozen memtables are immutable; tables are compacted by the
 *   levels), down to floor = min(oldest snapshot, compacted revision), like the memory engine:
 *   a write drops what it shadows below the floor at once, the rest waits in a queue for the floor.
 */
export class FlsmStore extends StoreCore implements MvccStore {
  private active: Memtable;
  /** Newest first; the last one is the next to flush. */
  private readonly frozen: Memtable[] = [];
  private readonly frozenAt = new Map<Memtable, FlushPoint>();
  /** Callers of `flushAll`, each waiting for the newest memtable frozen when it was called to be flushed. */
  private drainWaiters: { memtable: Memtable; resolve: () => void; reject: (error: unknown) => void }[] = [];
  /** The point the newest frozen memtable was frozen at (or the store started at): what flushes reach. */
  private frozenPoint: { revision: number; compactedRevision: number } = { revision: 0, compactedRevision: 0 };
  private frozenEntries = 0;
  private flushing = false;
  private flushFailure: string | undefined;
  private cancelRetry: (() => void) | undefined;
  private flushesStopped = false;
  private flushes = 0;
  private userBytes = 0;
  private readonly levels: RunSource;
  private readonly memtableBytes: number;
  private readonly gcQueue = new KeyQueue();
  private visited = 0;
  private lastKeyBytes: { readonly text: string; readonly bytes: Uint8Array } | undefined;

  constructor(private readonly flsm: FlsmOptions) {
    super(flsm);
    this.levels = flsm.levels ?? NO_LEVELS;
    this.memtableBytes = flsm.memtableBytes ?? MEMTABLE_BYTES_DEFAULT;
    assert(this.memtableBytes > 0, "the memtable needs a positive size");
    this.active = new Memtable(this.memtableBytes);
    if (flsm.start !== undefined) {
      this.current = flsm.start.revision;
      this.compacted = flsm.start.compactedRevision;
      this.liveKeys = flsm.start.keys;
      this.liveValueBytes = flsm.start.valueBytes;
      this.frozenPoint = { revision: flsm.start.revision, compactedRevision: flsm.start.compactedRevision };
    }
  }

  newestRevision(key: string): number {
    return this.entryAt(key, Number.POSITIVE_INFINITY)?.revision ?? 0;
  }

  protected isNewestLiveAt(key: string, revision: number): boolean {
    const last = this.entryAt(key, this.current);
    return last?.revision === revision && last.value !== null;
  }

  /** A command's versions stay in one memtable: it is frozen between commands. */
  protected override afterCommand(): void {
    if (this.active.bytes >= this.memtableBytes) this.rotate();
  }

  protected writeVersion(op: WriteOp, revision: number, floor: number, events: ChangeEvent[] | undefined): boolean {
    const { key, value } = op;
    const last = this.entryAt(key, revision);
    const existed = last !== undefined && last.value !== null;
    if (value === null && !existed) return false;
    // A put after a live version continues its life; after none or a tombstone it starts one.
    const version: Version =
      value === null
        ? { revision, value: null, createRevision: 0, version: 0 }
        : {
            revision,
            value,
            createRevision: existed ? last.createRevision : revision,
            version: existed ? last.version + 1 : 1,
            ...(op.expiresAtMs === undefined ? {} : { expiresAtMs: op.expiresAtMs }),
          };
    this.active.add(key, version);
    this.userBytes += Buffer.byteLength(key) + (value?.byteLength ?? 0);
    this.countLive(existed ? last.value!.byteLength : undefined, value);
    events?.push({ key, value, revision, previous: existed ? last.value! : undefined });
    if (op.expiresAtMs !== undefined && value !== null) this.options.onExpiry?.(key, revision, op.expiresAtMs);
    // What nobody can read any more goes now; what a snapshot or the history still needs, later.
    this.collect(key, floor);
    if (this.active.mayHoldGarbage(key)) this.gcQueue.push(key, revision);
    return true;
  }

  valueBytes(keys: readonly string[], revision = this.current): number[] {
    this.assertReadable(revision);
    return keys.map((key) => this.entryAt(key, revision)?.value?.byteLength ?? 0);
  }

  dumpChains(options: { after?: string; limit: number; revision: number }): KeyChain[] {
    return dumpRuns(this.runsOf, options, this.floor());
  }

  protected scanAt(options: ScanOptions): ScanPage {
    return scanRuns(this.runsOf, options);
  }

  protected changesAfter(options: { start?: string; end?: string; after: number; limit: number }): ChangePage {
    // Runs holding nothing after `after` have no change to give.
    const runsOf = (range: KeyRange) =>
      this.runsOf(range).filter((run) => run.maxRevision === undefined || run.maxRevision > options.after);
    return changesInRuns(runsOf, options, this.current, (key, bytes, revision) => this.entryAt(key, revision, bytes));
  }

  restore(revision: number, compactedRevision: number, chains: Iterable<KeyChain>): void {
    assert(this.current === 0 && this.versionCount === 0 && this.frozen.length === 0, "restore needs an empty store");
    // A restore's freezes happen mid-way, at no command boundary a flush to tables could record.
    assert(this.flsm.start === undefined, "a store started from tables is not restored from a checkpoint");
    for (const { key, versions } of chains) {
      assert(this.entryAt(key, Infinity) === undefined, () => `checkpoint holds ${JSON.stringify(key)} twice`);
      const last = versions.at(-1);
      assert(
        last !== undefined && last.revision <= revision,
        () => `checkpoint chain of ${JSON.stringify(key)} is empty or too new`,
      );
      for (const version of versions) this.active.add(key, version);
      this.countLive(undefined, last.value);
      if (last.value !== null && last.expiresAtMs !== undefined)
        this.options.onExpiry?.(key, last.revision, last.expiresAtMs);
      if (this.active.mayHoldGarbage(key)) this.gcQueue.push(key, last.revision);
      if (this.active.bytes >= this.memtableBytes) this.rotate();
    }
    this.current = revision;
    this.compacted = compactedRevision;
  }

  protected collectNext(floor: number): number | undefined {
    const key = this.gcQueue.popReady(floor);
    return key === undefined ? undefined : this.collect(key, floor);
  }

  protected hasGarbage(floor: number): boolean {
    return this.gcQueue.hasReady(floor);
  }

  /** Values left in half-empty slabs of the memtable by overwrites and GC move out a slab per slice. */
  protected override gcHousekeeping(): boolean {
    return this.active.evacuate();
  }

  stats(): StoreStats {
    return {
      ...this.coreStats(),
      versions: this.versionCount,
      versionsVisited: this.visited,
      packedBytes: 0,
      engine: {
        name: "flsm",
        memtableBytes: this.active.bytes,
        frozenMemtables: this.frozen.length,
        memtableFlushes: this.flushes,
      },
    };
  }

  memtableStats(): MemtableStats {
    return {
      activeBytes: this.active.bytes,
      frozen: this.frozen.length,
      flushes: this.flushes,
      userBytes: this.userBytes,
      ...(this.flushFailure === undefined ? {} : { flushFailure: this.flushFailure }),
    };
  }

  /**
   * Reports to onExpiry each of `expiries` (versions with a deadline, from the levels' tables) that
   * is still its key's newest version, live: what a store started from tables still has to expire.
   */
  reportExpiries(expiries: Iterable<{ key: Uint8Array; revision: number; expiresAtMs: number }>): void {
    const { onExpiry } = this.options;
    if (onExpiry === undefined) return;
    for (const { key, revision, expiresAtMs } of expiries) {
      const text = keyText(key);
      if (this.isNewestLiveAt(text, revision)) onExpiry(text, revision, expiresAtMs);
    }
  }

  /** Versions held in all runs (a version being flushed may count twice until its memtable goes). */
  private get versionCount(): number {
    return this.active.entryCount + this.frozenEntries + this.levels.entryCount;
  }

  /** The runs that may hold keys of `range`, newest first. */
  private readonly runsOf = (range: KeyRange): RangeRun[] => [
    this.active,
    ...this.frozen,
    ...this.levels.runsOverlapping(range),
  ];

  /**
   * The version of `key` a read at `revision` sees (possibly a tombstone), from the newest run
   * holding one: the memtables by the key's text, the levels by its bytes (made only if asked).
   */
  private entryAt(key: string, revision: number, bytes?: Uint8Array): Entry | undefined {
    this.visited++;
    const fresh = this.active.find(key, revision);
    if (fresh !== undefined) return fresh;
    for (const memtable of this.frozen) {
      this.visited++;
      const entry = memtable.find(key, revision);
      if (entry !== undefined) return entry;
    }
    const held = bytes ?? this.bytesOf(key);
    let hash: BloomHash | undefined;
    for (const run of this.levels.runsFor(held)) {
      this.visited++;
      const entry = run.get(held, revision, (hash ??= keyHash(held)));
      if (entry !== undefined) return entry;
    }
    return undefined;
  }

  /**
   * The key's UTF-8 bytes, kept for the next call: a write converts its key once for the levels'
   * read of its previous version, and gives the same bytes to GC's check.
   */
  private bytesOf(key: string): Uint8Array {
    if (this.lastKeyBytes?.text !== key) this.lastKeyBytes = { text: key, bytes: keyBytes(key) };
    return this.lastKeyBytes.bytes;
  }

  /** The key's state at `revision` (no readability check: callers did it, or hold a snapshot). */
  protected recordAt(key: string, revision: number): KeyRecord {
    const entry = this.entryAt(key, revision);
    return entry === undefined || entry.value === null ? missingRecord(key) : toRecord(key, entry);
  }

  /** Compacts the memtable's versions of `key` at `floor`. */
  private collect(key: string, floor: number): number {
    const dropped = this.active.compact(key, floor, () => this.olderRunsMayHold(key));
    this.gcCollected += dropped;
    return dropped;
  }

  /** Whether a run below the memtable holds a version of `key` (a tombstone there hides it). */
  private olderRunsMayHold(key: string): boolean {
    if (this.frozen.some((memtable) => memtable.find(key, Infinity) !== undefined)) return true;
    const bytes = this.bytesOf(key);
    let hash: BloomHash | undefined;
    for (const run of this.levels.runsFor(bytes))
      if (run.get(bytes, Infinity, (hash ??= keyHash(bytes))) !== undefined) return true;
    return false;
  }

  /**
   * Freezes the memtable and resolves once it, and every memtable frozen before it, is flushed: then
   * every command applied before the call is in the levels. Rejects with the error of a flush that
   * fails meanwhile. At once without a flush hook (nothing is flushed).
   *
   * The memtable is frozen even with no entries when commands came after the last freeze: a
   * Compact, a delete of a missing key or a transaction whose compare failed takes a revision and
   * leaves nothing in the memtable, and only a flush carries its revision (and compacted revision)
   * into the manifest. Writes that go on meanwhile do not hold the caller: it waits for its own
   * memtable, not for there to be none frozen, which a steady load never lets happen.
   */
  flushAll(): Promise<void> {
    if (this.flsm.flush === undefined) return Promise.resolve();
    const moved = this.current > this.frozenPoint.revision || this.compacted > this.frozenPoint.compactedRevision;
    if (this.active.entryCount > 0 || moved) this.rotate();
    const newest = this.frozen[0];
    if (newest === undefined) return Promise.resolve();
    return new Promise((resolve, reject) => {
      this.drainWaiters.push({ memtable: newest, resolve, reject });
      this.flushNext();
    });
  }

  /** Freezes the memtable and starts a new one; the frozen one waits for its flush. */
  private rotate(): void {
    this.active.freeze();
    this.frozenAt.set(this.active, {
      revision: this.current,
      compactedRevision: this.compacted,
      keys: this.liveKeys,
      valueBytes: this.liveValueBytes,
    });
    this.frozen.unshift(this.active);
    this.frozenPoint = { revision: this.current, compactedRevision: this.compacted };
    this.frozenEntries += this.active.entryCount;
    this.active = new Memtable(this.memtableBytes);
    this.gcQueue.clear();
    this.flushNext();
  }

  /** Hands no more memtables to the flush hook (its engine is closing); a retry waiting is cancelled. */
  stopFlushes(): void {
    this.flushesStopped = true;
    this.cancelRetry?.();
    this.cancelRetry = undefined;
  }

  /** Hands the oldest frozen memtable to the flush hook, unless one is being flushed. */
  private flushNext(): void {
    const { flush } = this.flsm;
    const oldest = this.frozen.at(-1);
    if (flush === undefined || oldest === undefined || this.flushing || this.flushesStopped) return;
    this.cancelRetry?.();
    this.cancelRetry = undefined;
    this.flushing = true;
    const at = this.frozenAt.get(oldest);
    assert(at !== undefined, "a frozen memtable has the point it was frozen at");
    flush(oldest, at).then(
      () => {
        assert(this.frozen.at(-1) === oldest, "frozen memtables leave in the order they were flushed");
        this.frozen.pop();
        this.frozenAt.delete(oldest);
        this.frozenEntries -= oldest.entryCount;
        this.flushes++;
        this.flushing = false;
        this.flushFailure = undefined;
        // Memtables are flushed oldest first: those waiting for this one are done.
        const done = this.drainWaiters.filter((waiter) => waiter.memtable === oldest);
        this.drainWaiters = this.drainWaiters.filter((waiter) => waiter.memtable !== oldest);
        for (const waiter of done) waiter.resolve();
        this.flushNext();
        this.flsm.flushSettled?.();
      },
      (error: unknown) => {
        this.flushing = false;
        this.flushFailure = describeError(error);
        for (const waiter of this.drainWaiters.splice(0)) waiter.reject(error);
        if (this.flushesStopped) return;
        (this.flsm.report ?? console.warn)(`memtable flush failed, retrying in a second: ${this.flushFailure}`);
        this.cancelRetry = realTimers.after(FLUSH_RETRY_MS, () => {
          this.cancelRetry = undefined;
          this.flushNext();
        });
        this.flsm.flushSettled?.();
      },
    );
  }
}

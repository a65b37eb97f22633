import { assert, describeError, HomeKvError } from "../../errors.ts";
import { compareHolds } from "../mvcc/compare.ts";
import { toRecord } from "../mvcc/range-reads.ts";
import { SnapshotRegistry } from "../mvcc/snapshots.ts";
import type {
  ChangeEvent,
  ChangePage,
  GcSlice,
  KeyChain,
  MvccStore,
  ScanOptions,
  ScanPage,
  Snapshot,
  StoreOptions,
  StoreStats,
} from "../mvcc/store-types.ts";
import type { Version } from "../mvcc/version-chain.ts";
import {
  type ApplyResult,
  type Compare,
  isWrite,
  type KeyRecord,
  type LogEntry,
  type TxnOp,
  type WriteOp,
} from "../ops.ts";
import type { Entry, KeyRange } from "./entry.ts";
import { keyBytes } from "./key-bytes.ts";
import { KeyQueue } from "./key-queue.ts";
import { Memtable } from "./memtable.ts";
import { changesInRuns, dumpRuns, scanRuns } from "./run-reads.ts";
import { NO_LEVELS, type RunSource, type StoredRun } from "./runs.ts";

/**
 * Writes a frozen memtable where the levels will read it (a table), and resolves once the store's
 * RunSource gives that table: the store then stops reading the memtable. Frozen memtables are
 * handed over one at a time, oldest first, so that the levels always hold older data than the
 * memtables still read. A rejected flush leaves the memtable read as before, and is tried again at
 * the next freeze.
 */
export type FlushHook = (memtable: Memtable) => Promise<void>;

export interface FlsmOptions extends StoreOptions {
  /** Heap bytes of versions (Memtable.bytes) at which the memtable is frozen and a new one started. */
  memtableBytes?: number;
  /** The runs below the memtables (the levels); none by default. */
  levels?: RunSource;
  /** Where frozen memtables go; without one they stay in memory, read like tables. */
  flush?: FlushHook;
  /** Where a failed flush is reported. */
  report?: (line: string) => void;
}

export const MEMTABLE_BYTES_DEFAULT = 64 * 1024 * 1024;
/** Versions a GC slice may collect per key of its budget before it stops, as in the memory engine. */
const GC_VERSIONS_PER_KEY = 4;
const missing = (key: string): KeyRecord => ({ key, value: undefined, modRevision: 0, createRevision: 0, version: 0 });

/** What the engine holds in memory besides the store's counters (tests and metrics). */
export interface MemtableStats {
  activeBytes: number;
  /** Frozen memtables not flushed yet (still read). */
  frozen: number;
  flushes: number;
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
export class FlsmStore implements MvccStore {
  private active = new Memtable();
  /** Newest first; the last one is the next to flush. */
  private readonly frozen: Memtable[] = [];
  private frozenEntries = 0;
  private flushing = false;
  private flushes = 0;
  private readonly levels: RunSource;
  private readonly memtableBytes: number;
  private readonly historyRevisions: number;
  private readonly snapshots = new SnapshotRegistry();
  private readonly gcQueue = new KeyQueue();
  private current = 0;
  private compacted = 0;
  private liveKeys = 0;
  private liveValueBytes = 0;
  private gcRuns = 0;
  private gcCollected = 0;
  private visited = 0;

  constructor(private readonly options: FlsmOptions) {
    this.levels = options.levels ?? NO_LEVELS;
    this.memtableBytes = options.memtableBytes ?? MEMTABLE_BYTES_DEFAULT;
    this.historyRevisions = options.historyRevisions ?? 0;
    assert(this.memtableBytes > 0, "the memtable needs a positive size");
    assert(this.historyRevisions >= 0, "history revisions must not be negative");
  }

  get revision(): number {
    return this.current;
  }

  get compactedRevision(): number {
    return this.compacted;
  }

  apply(entry: LogEntry): ApplyResult {
    assert(entry.revision === this.current + 1, `apply revision ${entry.revision} after ${this.current}`);
    const { revision } = entry;
    // Compaction moves with the revision, so that the floor below is the one after this commit.
    this.compacted = Math.max(this.compacted, revision - this.historyRevisions);
    const floor = this.floor();
    const events: ChangeEvent[] | undefined = this.options.onEvents ? [] : undefined;
    let deleted = 0;
    const write = (op: WriteOp) => {
      if (this.writeVersion(op, revision, floor, events) && op.value === null) deleted++;
    };
    let result: ApplyResult;
    switch (entry.kind) {
      case undefined:
      case "batch":
        assertDistinctWrites(entry.ops);
        entry.ops.forEach(write);
        result = { revision, deleted };
        break;
      case "txn": {
        const { compares, success, failure } = entry.txn;
        const succeeded = compares.every((clause) => compareHolds(clause, this.recordAt(clause.key, this.current)));
        const ops = succeeded ? success : failure;
        assertDistinctWrites(ops.filter(isWrite));
        // A get sees the writes before it in the transaction: it reads at the new revision.
        const reads: KeyRecord[] = [];
        for (const op of ops) {
          if (isWrite(op)) write(op);
          else reads.push(this.recordAt(op.get, revision));
        }
        result = { revision, deleted, succeeded, reads };
        break;
      }
      case "compact":
        this.compacted = Math.max(this.compacted, Math.min(entry.compactTo, revision));
        result = { revision, deleted: 0 };
        break;
      case "expire":
        for (const { key, revision: written } of entry.keys) {
          const last = this.entryAt(key, this.current);
          if (last?.revision === written && last.value !== null) write({ key, value: null });
        }
        result = { revision, deleted };
        break;
    }
    this.current = revision;
    // A command's versions stay in one memtable: it is frozen between commands.
    if (this.active.bytes >= this.memtableBytes) this.rotate();
    if (events && events.length > 0) this.options.onEvents!(revision, events);
    return result;
  }

  /** One put or delete at `revision`; false when it wrote nothing (a delete of a missing key). */
  private writeVersion(op: WriteOp, revision: number, floor: number, events: ChangeEvent[] | undefined): boolean {
    const { key } = op;
    const last = this.entryAt(key, revision);
    const existed = last !== undefined && last.value !== null;
    if (op.value === null && !existed) return false;
    let version: Version;
    if (op.value === null) version = { revision, value: null, createRevision: 0, version: 0 };
    else {
      // A put after a live version continues its life; after none or a tombstone it starts one.
      const life = existed ? { createRevision: last.createRevision, version: last.version + 1 } : undefined;
      version = {
        revision,
        value: op.value,
        createRevision: life?.createRevision ?? revision,
        version: life?.version ?? 1,
        ...(op.expiresAtMs === undefined ? {} : { expiresAtMs: op.expiresAtMs }),
      };
    }
    this.active.add(key, version);
    if (existed) {
      this.liveKeys--;
      this.liveValueBytes -= last.value!.byteLength;
    }
    if (op.value !== null) {
      this.liveKeys++;
      this.liveValueBytes += op.value.byteLength;
    }
    events?.push({ key: op.key, value: op.value, revision, previous: existed ? last.value! : undefined });
    if (op.expiresAtMs !== undefined && op.value !== null) this.options.onExpiry?.(op.key, revision, op.expiresAtMs);
    // What nobody can read any more goes now; what a snapshot or the history still needs, later.
    this.collect(key, floor);
    if (this.active.mayHoldGarbage(key)) this.gcQueue.push(key, revision);
    return true;
  }

  read(keys: readonly string[], revision = this.current): (Uint8Array | undefined)[] {
    return this.readRecords(keys, revision).map((record) => record.value);
  }

  readRecords(keys: readonly string[], revision = this.current): KeyRecord[] {
    this.assertReadable(revision);
    return keys.map((key) => this.recordAt(key, revision));
  }

  valueBytes(keys: readonly string[], revision = this.current): number[] {
    this.assertReadable(revision);
    return keys.map((key) => this.entryAt(key, revision)?.value?.byteLength ?? 0);
  }

  evaluate(compares: readonly Compare[], revision = this.current): boolean {
    this.assertReadable(revision);
    return compares.every((clause) => compareHolds(clause, this.recordAt(clause.key, revision)));
  }

  scan(options: ScanOptions): ScanPage {
    this.assertReadable(options.revision);
    return scanRuns(this.runsOf, options);
  }

  dumpChains(options: { after?: string; limit: number; revision: number }): KeyChain[] {
    return dumpRuns(this.runsOf, options, this.floor());
  }

  changes(options: { start?: string; end?: string; after: number; limit: number }): ChangePage {
    assert(options.limit > 0 && options.after >= 0, "changes need a positive limit and a revision");
    if (options.after < this.compacted) {
      throw new HomeKvError(
        "E_COMPACTED",
        `revision ${options.after + 1} is compacted (changes are kept from revision ${this.compacted + 1} on)`,
      );
    }
    // Runs holding nothing after `after` have no change to give.
    const runsOf = (range: KeyRange) =>
      this.runsOf(range).filter((run) => run.maxRevision === undefined || run.maxRevision > options.after);
    return changesInRuns(runsOf, options, this.current, (key, bytes, revision) => this.entryAt(key, revision, bytes));
  }

  restore(revision: number, compactedRevision: number, chains: Iterable<KeyChain>): void {
    assert(this.current === 0 && this.versionCount === 0 && this.frozen.length === 0, "restore needs an empty store");
    for (const { key, versions } of chains) {
      assert(this.entryAt(key, Infinity) === undefined, `checkpoint holds ${JSON.stringify(key)} twice`);
      const last = versions.at(-1);
      assert(
        last !== undefined && last.revision <= revision,
        `checkpoint chain of ${JSON.stringify(key)} is empty or too new`,
      );
      for (const version of versions) this.active.add(key, version);
      if (last.value !== null) {
        this.liveKeys++;
        this.liveValueBytes += last.value.byteLength;
        if (last.expiresAtMs !== undefined) this.options.onExpiry?.(key, last.revision, last.expiresAtMs);
      }
      if (this.active.mayHoldGarbage(key)) this.gcQueue.push(key, last.revision);
      if (this.active.bytes >= this.memtableBytes) this.rotate();
    }
    this.current = revision;
    this.compacted = compactedRevision;
  }

  openSnapshot(): Snapshot {
    const revision = this.current;
    this.snapshots.open(revision);
    let open = true;
    /** Runs `read` while the snapshot is open. */
    const whilePinned = <T>(read: () => T): T => {
      if (!open) throw new HomeKvError("E_UNAVAILABLE", "snapshot already released");
      return read();
    };
    const records = (keys: readonly string[]) => keys.map((key) => this.recordAt(key, revision));
    return {
      revision,
      read: (keys) => whilePinned(() => records(keys).map((record) => record.value)),
      readRecords: (keys) => whilePinned(() => records(keys)),
      scan: (options) => whilePinned(() => scanRuns(this.runsOf, { ...options, revision })),
      release: () => {
        if (!open) return;
        open = false;
        this.snapshots.release(revision);
      },
    };
  }

  collectGarbage(maxKeys: number): GcSlice {
    assert(maxKeys > 0, "GC slice must visit at least one key");
    const floor = this.floor();
    let keysVisited = 0;
    let versionsCollected = 0;
    // Bounded by versions too: keys overwritten thousands of times under a snapshot would otherwise
    // make one slice compact hundreds of thousands of versions.
    while (keysVisited < maxKeys && versionsCollected < maxKeys * GC_VERSIONS_PER_KEY) {
      const key = this.gcQueue.popReady(floor);
      if (key === undefined) break;
      keysVisited++;
      versionsCollected += this.collect(key, floor);
    }
    if (keysVisited > 0) this.gcRuns++;
    return { keysVisited, versionsCollected, more: this.gcQueue.hasReady(floor) };
  }

  stats(): StoreStats {
    return {
      revision: this.current,
      compactedRevision: this.compacted,
      keys: this.liveKeys,
      valueBytes: this.liveValueBytes,
      versions: this.versionCount,
      openSnapshots: this.snapshots.size,
      gcFloor: this.floor(),
      gcRuns: this.gcRuns,
      gcVersionsCollected: this.gcCollected,
      versionsVisited: this.visited,
      packedBytes: 0,
    };
  }

  memtableStats(): MemtableStats {
    return { activeBytes: this.active.bytes, frozen: this.frozen.length, flushes: this.flushes };
  }

  /** Versions held in all runs (a version being flushed may count twice until its memtable goes). */
  private get versionCount(): number {
    return this.active.entryCount + this.frozenEntries + this.levels.entryCount;
  }

  /** The runs that may hold keys of `range`, newest first. */
  private readonly runsOf = (range: KeyRange): StoredRun[] => [
    this.active,
    ...this.frozen,
    ...this.levels.runsOverlapping(range),
  ];

  /**
   * The version of `key` a read at `revision` sees (possibly a tombstone), from the newest run
   * holding one: the memtables by the key's text, the levels by its bytes (made only if asked).
   */
  private entryAt(key: string, revision: number, bytes?: Uint8Array): Entry | undefined {
    for (const memtable of this.memtables()) {
      this.visited++;
      const entry = memtable.find(key, revision);
      if (entry !== undefined) return entry;
    }
    const held = bytes ?? keyBytes(key);
    for (const run of this.levels.runsFor(held)) {
      this.visited++;
      const entry = run.get(held, revision);
      if (entry !== undefined) return entry;
    }
    return undefined;
  }

  private *memtables(): Generator<Memtable> {
    yield this.active;
    yield* this.frozen;
  }

  /** The key's state at `revision` (no readability check: callers did it, or hold a snapshot). */
  private recordAt(key: string, revision: number): KeyRecord {
    const entry = this.entryAt(key, revision);
    return entry === undefined || entry.value === null ? missing(key) : toRecord(key, entry);
  }

  /** The oldest revision anyone can still read: GC may drop only what no reader at or above it sees. */
  private floor(): number {
    return Math.min(this.snapshots.oldest() ?? Infinity, this.compacted);
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
    const bytes = keyBytes(key);
    for (const run of this.levels.runsFor(bytes)) if (run.get(bytes, Infinity) !== undefined) return true;
    return false;
  }

  /** Freezes the memtable and starts a new one; the frozen one waits for its flush. */
  private rotate(): void {
    this.active.freeze();
    this.frozen.unshift(this.active);
    this.frozenEntries += this.active.entryCount;
    this.active = new Memtable();
    this.gcQueue.clear();
    this.flushNext();
  }

  /** Hands the oldest frozen memtable to the flush hook, unless one is being flushed. */
  private flushNext(): void {
    const { flush } = this.options;
    const oldest = this.frozen.at(-1);
    if (flush === undefined || oldest === undefined || this.flushing) return;
    this.flushing = true;
    flush(oldest).then(
      () => {
        assert(this.frozen.at(-1) === oldest, "frozen memtables leave in the order they were flushed");
        this.frozen.pop();
        this.frozenEntries -= oldest.entryCount;
        this.flushes++;
        this.flushing = false;
        this.flushNext();
      },
      (error: unknown) => {
        this.flushing = false;
        (this.options.report ?? console.warn)(
          `memtable flush failed, retrying at the next freeze: ${describeError(error)}`,
        );
      },
    );
  }

  private assertReadable(revision: number): void {
    if (revision > this.current) {
      throw new HomeKvError("E_FUTURE_REVISION", `revision ${revision} is in the future (current ${this.current})`);
    }
    if (revision < this.compacted) {
      throw new HomeKvError("E_COMPACTED", `revision ${revision} is compacted (oldest readable ${this.compacted})`);
    }
  }
}

function assertDistinctWrites(ops: readonly TxnOp[]): void {
  if (ops.length <= 1) return;
  const keys = new Set(ops.map((op) => (isWrite(op) ? op.key : op.get)));
  assert(keys.size === ops.length, "a key is written twice in one command");
}

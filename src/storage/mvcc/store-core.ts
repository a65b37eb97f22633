import { assert, HomeKvError } from "../../errors.ts";
import {
  type ApplyResult,
  type Compare,
  isWrite,
  type KeyRecord,
  type LateEntry,
  type LogEntry,
  type TxnOp,
  type WriteOp,
} from "../ops.ts";
import { compareHolds } from "./compare.ts";
import { LateWrites } from "./late-writes.ts";
import { SnapshotRegistry } from "./snapshots.ts";
import type {
  ChangeEvent,
  ChangePage,
  GcSlice,
  KeyChain,
  ScanOptions,
  ScanPage,
  Snapshot,
  StoreOptions,
  StoreStats,
} from "./store-types.ts";

/** Versions a GC slice may collect per key of its budget before it stops (see collectGarbage). */
const GC_VERSIONS_PER_KEY = 4;

export const missingRecord = (key: string): KeyRecord => ({
  key,
  value: undefined,
  modRevision: 0,
  createRevision: 0,
  version: 0,
});

/**
 * What every engine's MVCC store does the same way (the memory engine, store.ts; the fragmented
 * LSM, flsm/flsm-store.ts): the revision and compaction counters, applying a command's writes and
 * transactions, readability checks, snapshots pinning the GC floor, and the bounded GC slice. An
 * engine supplies where versions live: how one is written, how a key's record at a revision is
 * found, scans and changes over its structures, and one step of garbage collection.
 */
export abstract class StoreCore {
  protected readonly snapshots = new SnapshotRegistry();
  /** Late writes applied while a snapshot is open: what its dump leaves out. */
  private readonly lateWrites = new LateWrites();
  protected current = 0;
  protected compacted = 0;
  protected liveKeys = 0;
  protected liveValueBytes = 0;
  protected gcRuns = 0;
  protected gcCollected = 0;
  private readonly historyRevisions: number;

  constructor(protected readonly options: StoreOptions) {
    this.historyRevisions = options.historyRevisions ?? 0;
    assert(this.historyRevisions >= 0, "history revisions must not be negative");
  }

  /**
   * One put or delete at `revision`, compacting what it shadows down to `floor`; false when it
   * wrote nothing (a delete of a missing key). Reports the change to `events` and a TTL to onExpiry.
   */
  protected abstract writeVersion(
    op: WriteOp,
    revision: number,
    floor: number,
    events: ChangeEvent[] | undefined,
  ): boolean;
  /** The key's state at `revision` (no readability check: callers did it, or hold a snapshot). */
  protected abstract recordAt(key: string, revision: number): KeyRecord;
  /** The revision of the key's newest version, a tombstone's too (0: none). */
  abstract newestRevision(key: string): number;
  /** Whether the key's newest version is a live one written at `revision` (what a TTL expiry deletes). */
  protected abstract isNewestLiveAt(key: string, revision: number): boolean;
  /** A scan at a readable revision (checked by the caller). */
  protected abstract scanAt(options: ScanOptions): ScanPage;
  /** The changes after a revision not compacted (checked by the caller). */
  protected abstract changesAfter(options: { start?: string; end?: string; after: number; limit: number }): ChangePage;
  /** Every retained version of keys after `after`, up to `revision`, late writes included (MvccStore.dumpChains). */
  abstract dumpChains(options: { after?: string; limit: number; revision: number }): KeyChain[];
  /** Collects the garbage of the next key whose versions wait for `floor`: the versions dropped, or undefined when none waits. */
  protected abstract collectNext(floor: number): number | undefined;
  /** Whether a key waits to be collected at `floor`. */
  protected abstract hasGarbage(floor: number): boolean;
  /** Engine work a GC slice does besides keys (the memory engine moves a slab); true when more waits. */
  protected gcHousekeeping(): boolean {
    return false;
  }
  /** Called after each command is applied, before its events go out. */
  protected afterCommand(): void {}

  get revision(): number {
    return this.current;
  }

  get compactedRevision(): number {
    return this.compacted;
  }

  /**
   * Applies a command at `entry.revision`: any integer above the current revision. A single node and
   * one Raft group stamp the next one; a partition stamps cluster-wide timestamps, which skip the
   * revisions other partitions took (a gap holds no command: a read in it sees the state of the
   * command before it). Nothing here counts commands, only revision numbers.
   */
  apply(entry: LogEntry): ApplyResult {
    const { revision } = entry;
    assert(
      revision > this.current && Number.isSafeInteger(revision),
      () => `apply revision ${revision} after ${this.current}`,
    );
    // Compaction moves with the revision, so that the floor below is the one after this commit: the
    // history kept is a window of revision numbers, whatever commands fall in it.
    this.compacted = Math.max(this.compacted, revision - this.historyRevisions);
    const floor = this.floor();
    const { onEvents, eventsWanted } = this.options;
    const events: ChangeEvent[] | undefined = onEvents && (eventsWanted?.() ?? true) ? [] : undefined;
    let deleted = 0;
    const write = (op: WriteOp) => {
      if (this.writeVersion(op, revision, floor, events) && op.value === null) deleted++;
    };
    let result: ApplyResult;
    switch (entry.kind) {
      case undefined:
      case "batch":
        assertDistinctWrites(entry.ops);
        for (const op of entry.ops) write(op);
        result = { revision, deleted };
        break;
      case "txn": {
        const { compares, success, failure } = entry.txn;
        const succeeded = compares.every((clause) => compareHolds(clause, this.recordAt(clause.key, this.current)));
        const ops = succeeded ? success : failure;
        assertDistinctWrites(ops.filter(isWrite));
        const reads: KeyRecord[] = [];
        for (const op of ops) {
          if (isWrite(op)) write(op);
          else reads.push(this.recordAt(op.get, revision)); // sees the writes before it in this txn
        }
        result = { revision, deleted, succeeded, reads };
        break;
      }
      case "compact":
        this.compacted = Math.max(this.compacted, Math.min(entry.compactTo, revision));
        result = { revision, deleted: 0 };
        break;
      case "expire":
        for (const { key, revision: written } of entry.keys)
          if (this.isNewestLiveAt(key, written)) write({ key, value: null });
        result = { revision, deleted };
        break;
    }
    this.current = revision;
    this.afterCommand();
    if (events && events.length > 0) onEvents!(revision, events);
    return result;
  }

  compactTo(revision: number): number {
    this.compacted = Math.max(this.compacted, Math.min(revision, this.current));
    return this.compacted;
  }

  /**
   * Writes committed late, at a revision at or below the current one (WriteView.applyLate: when it
   * is taken, and what reads, snapshots, changes and watchers see of it). Each key's version at C
   * goes on as its newest, as a write at the current revision would: the chains stay newest first,
   * and GC finds nothing new to reason about (C is above the floor, which is at most the compacted
   * revision, so the version it shadows stays while a reader between them may need it).
   */
  applyLate(entry: LateEntry): ApplyResult {
    const { revision, ops } = entry;
    assert(
      revision <= this.current && Number.isSafeInteger(revision),
      () => `late commit at revision ${revision}, the store at ${this.current} (above it: apply)`,
    );
    assertDistinctWrites(ops);
    if (revision <= this.compacted) {
      throw new HomeKvError(
        "E_COMPACTED",
        `late commit at revision ${revision}: at or below the compacted revision ${this.compacted}`,
      );
    }
    // All checked before anything is written: a refused commit leaves the store as it was.
    for (const { key } of ops) {
      const newest = this.newestRevision(key);
      if (newest >= revision) {
        throw new HomeKvError(
          "E_INVALID",
          `late commit at revision ${revision}: ${JSON.stringify(key)} has a version at revision ${newest}`,
        );
      }
    }
    const floor = this.floor();
    let deleted = 0;
    const pinned = this.snapshots.size > 0;
    for (const op of ops) {
      if (!this.writeVersion(op, revision, floor, undefined)) continue;
      if (op.value === null) deleted++;
      if (pinned) this.lateWrites.record(op.key, revision);
    }
    this.afterCommand();
    return { revision, deleted };
  }

  read(keys: readonly string[], revision = this.current): (Uint8Array | undefined)[] {
    return this.readRecords(keys, revision).map((record) => record.value);
  }

  readRecords(keys: readonly string[], revision = this.current): KeyRecord[] {
    this.assertReadable(revision);
    return keys.map((key) => this.recordAt(key, revision));
  }

  evaluate(compares: readonly Compare[], revision = this.current): boolean {
    this.assertReadable(revision);
    return compares.every((clause) => compareHolds(clause, this.recordAt(clause.key, revision)));
  }

  scan(options: ScanOptions): ScanPage {
    this.assertReadable(options.revision);
    return this.scanAt(options);
  }

  changes(options: { start?: string; end?: string; after: number; limit: number }): ChangePage {
    assert(options.limit > 0 && options.after >= 0, "changes need a positive limit and a revision");
    if (options.after < this.compacted) {
      throw new HomeKvError(
        "E_COMPACTED",
        `revision ${options.after + 1} is compacted (changes are kept from revision ${this.compacted + 1} on)`,
      );
    }
    return this.changesAfter(options);
  }

  openSnapshot(): Snapshot {
    const revision = this.current;
    // GC is held at the compacted revision of the moment, not at the revision: what a dump of the
    // snapshot (a checkpoint) holds is then the history readable when it was pinned, whatever
    // compaction comes meanwhile, and it can say so (a replica restored from it must refuse alike).
    const compactedRevision = this.compacted;
    this.snapshots.open(compactedRevision);
    const lateFrom = this.lateWrites.sequence;
    let open = true;
    /** Runs `read` while the snapshot is open. */
    const whilePinned = <T>(read: () => T): T => {
      if (!open) throw new HomeKvError("E_UNAVAILABLE", "snapshot already released");
      return read();
    };
    const records = (keys: readonly string[]) => keys.map((key) => this.recordAt(key, revision));
    return {
      revision,
      compactedRevision,
      read: (keys) => whilePinned(() => records(keys).map((record) => record.value)),
      readRecords: (keys) => whilePinned(() => records(keys)),
      scan: (options) => whilePinned(() => this.scanAt({ ...options, revision })),
      chains: (options) => whilePinned(() => this.chainsAsPinned(revision, lateFrom, options)),
      release: () => {
        if (!open) return;
        open = false;
        this.snapshots.release(compactedRevision);
        if (this.snapshots.size === 0) this.lateWrites.clear();
      },
    };
  }

  /**
   * `dumpChains` at a snapshot's revision less the late writes applied since it was opened
   * (numbered from `lateFrom`): a page of chains as they stood then. A page left empty by that is
   * followed by the next, so that only the end of the keys gives an empty one; each turn of the
   * loop moves past a page of keys, so it ends.
   */
  private chainsAsPinned(revision: number, lateFrom: number, options: { after?: string; limit: number }): KeyChain[] {
    const left = this.lateWrites.since(lateFrom);
    if (left === undefined) return this.dumpChains({ ...options, revision });
    for (let after = options.after; ; ) {
      const page = this.dumpChains({ after, limit: options.limit, revision });
      const kept = page.flatMap((chain) => {
        const late = left.get(chain.key);
        if (late === undefined) return [chain];
        const versions = chain.versions.filter((version) => !late.has(version.revision));
        return versions.length === 0 ? [] : [{ key: chain.key, versions }];
      });
      if (kept.length > 0 || page.length === 0) return kept;
      after = page.at(-1)!.key;
    }
  }

  collectGarbage(maxKeys: number): GcSlice {
    assert(maxKeys > 0, "GC slice must visit at least one key");
    const floor = this.floor();
    let keysVisited = 0;
    let versionsCollected = 0;
    // Bounded by versions too: keys overwritten thousands of times under a snapshot would otherwise
    // make a slice of a thousand keys compact hundreds of thousands of versions (40–60 ms).
    while (keysVisited < maxKeys && versionsCollected < maxKeys * GC_VERSIONS_PER_KEY) {
      const dropped = this.collectNext(floor);
      if (dropped === undefined) break;
      keysVisited++;
      versionsCollected += dropped;
    }
    const housekeeping = this.gcHousekeeping();
    if (keysVisited > 0) this.gcRuns++;
    return { keysVisited, versionsCollected, more: this.hasGarbage(floor) || housekeeping };
  }

  /** The figures every engine keeps the same way; an engine's stats() adds its own. */
  protected coreStats(): Omit<StoreStats, "versions" | "versionsVisited" | "packedBytes" | "engine"> {
    return {
      revision: this.current,
      compactedRevision: this.compacted,
      keys: this.liveKeys,
      valueBytes: this.liveValueBytes,
      openSnapshots: this.snapshots.size,
      gcFloor: this.floor(),
      gcRuns: this.gcRuns,
      gcVersionsCollected: this.gcCollected,
    };
  }

  /** Counts a write in the live totals: `previous` is the size of the live value it replaced, if any. */
  protected countLive(previous: number | undefined, value: Uint8Array | null): void {
    if (previous !== undefined) {
      this.liveKeys--;
      this.liveValueBytes -= previous;
    }
    if (value !== null) {
      this.liveKeys++;
      this.liveValueBytes += value.byteLength;
    }
  }

  /**
   * The oldest revision anyone can still read: GC may drop only what no reader at or above it sees.
   * An open snapshot holds it at the compacted revision of when it was opened, below every late
   * write since (none lands at or below the compacted revision), so a version a late write shadows
   * stays while a dump that leaves the late write out may still show it.
   */
  protected floor(): number {
    return Math.min(this.snapshots.oldest() ?? Infinity, this.compacted);
  }

  protected assertReadable(revision: number): void {
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

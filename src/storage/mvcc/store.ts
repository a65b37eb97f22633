import { assert, HomeKvError } from "../../errors.ts";
import {
  type ApplyResult,
  type Compare,
  isWrite,
  type KeyRecord,
  type LogEntry,
  type TxnOp,
  type WriteOp,
} from "../ops.ts";
import { compareHolds } from "./compare.ts";
import { GcQueue } from "./gc-queue.ts";
import { toIndexKey } from "./key-order.ts";
import { changesSince, dumpChains, scanRange, toRecord } from "./range-reads.ts";
import { SnapshotRegistry } from "./snapshots.ts";
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
} from "./store-types.ts";
import { NONE, VersionChains } from "./version-chain.ts";

/**
 * The MVCC state machine: an ordered index of keys, each with its chain of versions, and one global
 * revision counter. `apply` stamps a committed command; reads name the revision they read at.
 *
 * A read at revision R sees every command ≤ R whole and nothing after it. R must be readable: at
 * least the compacted revision and at most the current one (a snapshot may read below the compacted
 * revision: it pins what it sees). A write to an existing key costs O(1), a new key O(log n)
 * (B+ tree insert); never O(n).
 */
export type * from "./store-types.ts";

export function createMvccStore(options: StoreOptions = {}): MvccStore {
  return new PackedMvccStore(options);
}

/** Versions a GC slice may collect per key of its budget before it stops (see collectGarbage). */
const GC_VERSIONS_PER_KEY = 4;
const missing = (key: string): KeyRecord => ({ key, value: undefined, modRevision: 0, createRevision: 0, version: 0 });

class PackedMvccStore implements MvccStore {
  /** Every key's versions, found by index key (key-order.ts) or in key order. */
  private readonly chains: VersionChains;
  private readonly snapshots = new SnapshotRegistry();
  private readonly gcQueue = new GcQueue();
  private readonly historyRevisions: number;
  private current = 0;
  private compacted = 0;
  private liveKeys = 0;
  private liveValueBytes = 0;
  private versions = 0;
  private gcRuns = 0;
  private gcCollected = 0;

  constructor(private readonly options: StoreOptions) {
    this.chains = new VersionChains(options.tuning);
    this.historyRevisions = options.historyRevisions ?? 0;
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
    const revision = entry.revision;
    // Compaction moves with the revision, so that the floor below is the one after this commit.
    this.compacted = Math.max(this.compacted, revision - this.historyRevisions);
    const events: ChangeEvent[] | undefined = this.options.onEvents ? [] : undefined;
    const writer = new CommandWriter(this, revision, this.floor(), events);
    let result: ApplyResult;
    switch (entry.kind) {
      case undefined:
      case "batch":
        assertDistinctWrites(entry.ops);
        for (const op of entry.ops) writer.write(op);
        result = { revision, deleted: writer.deleted };
        break;
      case "txn": {
        const succeeded = entry.txn.compares.every((clause) =>
          compareHolds(clause, this.recordAt(clause.key, this.current)),
        );
        const ops = succeeded ? entry.txn.success : entry.txn.failure;
        assertDistinctWrites(ops.filter(isWrite));
        const reads: KeyRecord[] = [];
        for (const op of ops) {
          if (isWrite(op)) writer.write(op);
          else reads.push(this.recordAt(op.get, revision)); // sees the writes before it in this txn
        }
        result = { revision, deleted: writer.deleted, succeeded, reads };
        break;
      }
      case "compact":
        this.compacted = Math.max(this.compacted, Math.min(entry.compactTo, revision));
        result = { revision, deleted: 0 };
        break;
      case "expire":
        for (const { key, revision: written } of entry.keys) {
          const id = this.chains.index.find(toIndexKey(key));
          const last = id === NONE ? NONE : this.chains.newest(id);
          if (last !== NONE && this.chains.revision(last) === written && !this.chains.isTombstone(last))
            writer.write({ key, value: null });
        }
        result = { revision, deleted: writer.deleted };
        break;
    }
    this.current = revision;
    if (events && events.length > 0) this.options.onEvents!(revision, events);
    return result;
  }

  /** Called by CommandWriter: one put or delete at `revision`, compacted at once down to `floor`. */
  writeVersion(op: WriteOp, revision: number, floor: number, events: ChangeEvent[] | undefined): boolean {
    const { chains } = this;
    const key = toIndexKey(op.key);
    let id = chains.index.find(key);
    const last = id === NONE ? NONE : chains.newest(id);
    const existed = last !== NONE && !chains.isTombstone(last);
    if (op.value === null && !existed) return false; // deleting a missing key writes nothing
    const previousBytes = existed ? chains.valueBytes(last) : 0;
    // A copy of the previous value only for watchers: most writes need none.
    const previous = events && existed ? chains.value(last)! : undefined;
    // A put over a lone version nobody can read once this commits (no history, no snapshot under it):
    // rewritten in place, which is what the append and the compaction below would come to.
    const inPlace = op.value !== null && id !== NONE && revision <= floor && chains.hasSingleVersion(id);
    if (inPlace) {
      chains.replaceOnly(id, revision, op.value!, op.expiresAtMs);
      this.gcCollected++; // the version replaced, as the compaction would have counted it
    } else {
      id = chains.append(key, id, revision, op.value, op.expiresAtMs);
      this.versions++;
    }
    if (existed) {
      this.liveValueBytes -= previousBytes;
      this.liveKeys--;
    }
    if (op.value !== null) {
      this.liveValueBytes += op.value.byteLength;
      this.liveKeys++;
    }
    events?.push({ key: op.key, value: op.value, revision, previous });
    if (op.expiresAtMs !== undefined && op.value !== null) this.options.onExpiry?.(op.key, revision, op.expiresAtMs);
    // What nobody can read any more goes now; what a snapshot or the history still needs, later.
    if (!inPlace) this.collect(id, floor);
    if (chains.mayHoldGarbage(id)) this.gcQueue.push(id, revision);
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
    return keys.map((key) => {
      const slot = this.slotAt(key, revision);
      return slot === NONE ? 0 : this.chains.valueBytes(slot);
    });
  }

  evaluate(compares: readonly Compare[], revision = this.current): boolean {
    this.assertReadable(revision);
    return compares.every((clause) => compareHolds(clause, this.recordAt(clause.key, revision)));
  }

  scan(options: ScanOptions): ScanPage {
    this.assertReadable(options.revision);
    return scanRange(this.chains, options);
  }

  dumpChains(options: { after?: string; limit: number; revision: number }): KeyChain[] {
    return dumpChains(this.chains, options);
  }

  changes(options: { start?: string; end?: string; after: number; limit: number }): ChangePage {
    assert(options.limit > 0 && options.after >= 0, "changes need a positive limit and a revision");
    if (options.after < this.compacted) {
      throw new HomeKvError(
        "E_COMPACTED",
        `revision ${options.after + 1} is compacted (changes are kept from revision ${this.compacted + 1} on)`,
      );
    }
    return changesSince(this.chains, options, this.current);
  }

  restore(revision: number, compactedRevision: number, chains: Iterable<KeyChain>): void {
    assert(this.current === 0 && this.chains.index.size === 0, "restore needs an empty store");
    for (const { key, versions } of chains) {
      const indexKey = toIndexKey(key);
      assert(this.chains.index.find(indexKey) === NONE, `checkpoint holds ${JSON.stringify(key)} twice`);
      assert(
        versions.length > 0 && versions.at(-1)!.revision <= revision,
        `checkpoint chain of ${JSON.stringify(key)} is empty or too new`,
      );
      let id = NONE;
      for (const version of versions) id = this.chains.restore(indexKey, id, version);
      this.versions += versions.length;
      const last = versions.at(-1)!;
      if (last.value !== null) {
        this.liveKeys++;
        this.liveValueBytes += last.value.byteLength;
        if (last.expiresAtMs !== undefined) this.options.onExpiry?.(key, last.revision, last.expiresAtMs);
      }
      if (this.chains.mayHoldGarbage(id)) this.gcQueue.push(id, last.revision);
    }
    this.current = revision;
    this.compacted = compactedRevision;
  }

  openSnapshot(): Snapshot {
    const revision = this.current;
    this.snapshots.open(revision);
    let open = true;
    const pinned = () => {
      if (!open) throw new HomeKvError("E_UNAVAILABLE", "snapshot already released");
    };
    return {
      revision,
      read: (keys) => {
        pinned();
        return keys.map((key) => this.recordAt(key, revision).value);
      },
      readRecords: (keys) => {
        pinned();
        return keys.map((key) => this.recordAt(key, revision));
      },
      scan: (options) => {
        pinned();
        return scanRange(this.chains, { ...options, revision });
      },
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
    // make a slice of a thousand keys compact hundreds of thousands of versions (40–60 ms).
    while (keysVisited < maxKeys && versionsCollected < maxKeys * GC_VERSIONS_PER_KEY) {
      const id = this.gcQueue.popReady(floor);
      if (id === undefined) break;
      keysVisited++;
      versionsCollected += this.collect(id, floor); // nothing when the key has gone meanwhile
    }
    // Values left in half-empty slabs by overwrites and GC move out a slab per slice.
    const evacuating = this.chains.evacuationPending && this.chains.evacuateSlab();
    if (keysVisited > 0) this.gcRuns++;
    return { keysVisited, versionsCollected, more: this.gcQueue.hasReady(floor) || evacuating };
  }

  stats(): StoreStats {
    return {
      revision: this.current,
      compactedRevision: this.compacted,
      keys: this.liveKeys,
      valueBytes: this.liveValueBytes,
      versions: this.versions,
      openSnapshots: this.snapshots.size,
      gcFloor: this.floor(),
      gcRuns: this.gcRuns,
      gcVersionsCollected: this.gcCollected,
      versionsVisited: this.chains.versionsVisited,
      packedBytes: this.chains.allocatedBytes,
    };
  }

  /** The key's state at `revision` (no readability check: callers did it, or hold a snapshot). */
  private recordAt(key: string, revision: number): KeyRecord {
    const slot = this.slotAt(key, revision);
    return slot === NONE || this.chains.isTombstone(slot) ? missing(key) : toRecord(key, this.chains.version(slot));
  }

  /** The slot of the version of `key` visible at `revision`, or NONE. */
  private slotAt(key: string, revision: number): number {
    const id = this.chains.index.find(toIndexKey(key));
    return id === NONE ? NONE : this.chains.versionAt(id, revision);
  }

  /** The oldest revision anyone can still read: GC may drop only what no reader at or above it sees. */
  private floor(): number {
    return Math.min(this.snapshots.oldest() ?? Infinity, this.compacted);
  }

  /** Compacts one key's versions at `floor` (a key left with none leaves the index). */
  private collect(id: number, floor: number): number {
    const dropped = this.chains.compact(id, floor);
    this.versions -= dropped;
    this.gcCollected += dropped;
    return dropped;
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

/** Applies the writes of one command at one revision, counting deletes. */
class CommandWriter {
  deleted = 0;

  constructor(
    private readonly store: PackedMvccStore,
    private readonly revision: number,
    private readonly floor: number,
    private readonly events: ChangeEvent[] | undefined,
  ) {}

  write(op: WriteOp): void {
    const wrote = this.store.writeVersion(op, this.revision, this.floor, this.events);
    if (wrote && op.value === null) this.deleted++;
  }
}

function assertDistinctWrites(ops: readonly TxnOp[]): void {
  if (ops.length <= 1) return;
  const keys = new Set(ops.map((op) => (isWrite(op) ? op.key : op.get)));
  assert(keys.size === ops.length, "a key is written twice in one command");
}

import { AssertionError, assert } from "../../errors.ts";
import type { KeyRecord, WriteOp } from "../ops.ts";
import { cursorOf } from "./chain-cursor.ts";
import { GcQueue } from "./gc-queue.ts";
import { toIndexKey } from "./key-order.ts";
import { changesSince, dumpChains, scanRange, toRecord } from "./range-reads.ts";
import { missingRecord, StoreCore } from "./store-core.ts";
import type {
  ChangeEvent,
  ChangePage,
  KeyChain,
  MvccStore,
  RestoreChains,
  ScanOptions,
  ScanPage,
  StoreOptions,
  StoreStats,
} from "./store-types.ts";
import { NONE, VersionChains } from "./version-chain.ts";

/**
 * The MVCC state machine: an ordered index of keys, each with its chain of versions, and one global
 * revision counter. `apply` stamps a committed command; reads name the revision they read at.
 *
 * A read at revision R sees every command ≤ R whole and nothing after it, R a command's revision or
 * one in a gap between two (revisions may skip numbers: store-types.ts). R must be readable: at
 * least the compacted revision and at most the current one (a snapshot may read below the compacted
 * revision: it pins what it sees). A write to an existing key costs O(1), a new key O(log n)
 * (B+ tree insert); never O(n).
 */
export type * from "./store-types.ts";

/** Versions (one more at most) a write drops from the oldest end of a ringed chain: more than one write makes. */
const WRITE_RING_DROPS = 4;

export function createMvccStore(options: StoreOptions = {}): MvccStore {
  return new PackedMvccStore(options);
}

class PackedMvccStore extends StoreCore implements MvccStore {
  /** Every key's versions, found by index key (key-order.ts) or in key order. */
  private readonly chains: VersionChains;
  private readonly gcQueue = new GcQueue();
  private versions = 0;

  constructor(options: StoreOptions) {
    super(options);
    this.chains = new VersionChains(options.tuning);
  }

  newestRevision(key: string): number {
    const id = this.chains.index.find(toIndexKey(key));
    return id === NONE ? 0 : this.chains.revision(this.chains.newest(id));
  }

  protected isNewestLiveAt(key: string, revision: number): boolean {
    const id = this.chains.index.find(toIndexKey(key));
    const last = id === NONE ? NONE : this.chains.newest(id);
    return last !== NONE && this.chains.revision(last) === revision && !this.chains.isTombstone(last);
  }

  protected writeVersion(op: WriteOp, revision: number, floor: number, events: ChangeEvent[] | undefined): boolean {
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
    this.countLive(existed ? previousBytes : undefined, op.value);
    events?.push({ key: op.key, value: op.value, revision, previous });
    if (op.expiresAtMs !== undefined && op.value !== null) this.options.onExpiry?.(op.key, revision, op.expiresAtMs);
    // What nobody can read any more goes now when it is at hand: the version this one shadows is
    // under the floor, so a walk from the newest stops after two, or the chain has a ring, which
    // compacts from its oldest end (what goes, plus two), a few versions a write: a released
    // snapshot may have left tens of thousands, which the queue's entries and GC slices take in
    // bounded steps. Otherwise the history above the floor would be walked on every write, and the
    // queue takes it from the other end later. Rings matter after a restore: it queues a key once,
    // at its newest version, and a hot key's restored history would otherwise stay as the floor
    // passes it, until the floor reaches that version.
    if (!inPlace && last !== NONE && (chains.revision(last) <= floor || chains.hasRing(id)))
      this.collect(id, floor, WRITE_RING_DROPS);
    if (chains.mayHoldGarbage(id)) this.gcQueue.push(id, revision, chains.newest(id));
    // Two of what the floor has passed go with each write (each pushes one at most): memory keeps
    // pace with the history without waiting for a GC slice, at O(1) and what is dropped apiece.
    for (let i = 0; i < 2 && this.collectNext(floor) !== undefined; i++);
    return true;
  }

  valueBytes(keys: readonly string[], revision = this.current): number[] {
    this.assertReadable(revision);
    return keys.map((key) => {
      const slot = this.slotAt(key, revision);
      return slot === NONE ? 0 : this.chains.valueBytes(slot);
    });
  }

  dumpChains(options: { after?: string; limit: number; revision: number }): KeyChain[] {
    return dumpChains(this.chains, options);
  }

  protected scanAt(options: ScanOptions): ScanPage {
    return scanRange(this.chains, options);
  }

  protected changesAfter(options: { start?: string; end?: string; after: number; limit: number }): ChangePage {
    return changesSince(this.chains, options, this.current);
  }

  /** Fills the empty store from `chains`, read in place when they are a checkpoint's (see ChainCursor). */
  restore(revision: number, compactedRevision: number, chains: RestoreChains): void {
    assert(this.current === 0 && this.chains.index.size === 0, "restore needs an empty store");
    const cursor = cursorOf(chains);
    while (cursor.nextChain()) {
      let id = NONE;
      let versions = 0;
      // The newest version's, kept as numbers: the cursor's fields say nothing once it has passed it.
      let newestRevision = 0;
      let newestExpiresAtMs: number | undefined;
      let newestLength = -1;
      while (cursor.nextVersion()) {
        id = this.chains.restoreFrom(cursor, id);
        versions++;
        newestRevision = cursor.revision;
        newestExpiresAtMs = cursor.expiresAtMs;
        newestLength = cursor.valueLength;
      }
      if (versions === 0 || newestRevision > revision)
        throw new AssertionError(`checkpoint chain of ${JSON.stringify(cursor.key())} is empty or too new`);
      this.versions += versions;
      if (newestLength >= 0) {
        this.liveKeys++;
        this.liveValueBytes += newestLength;
        if (newestExpiresAtMs !== undefined) this.options.onExpiry?.(cursor.key(), newestRevision, newestExpiresAtMs);
      }
      if (this.chains.mayHoldGarbage(id)) this.gcQueue.push(id, newestRevision, this.chains.newest(id));
    }
    this.current = revision;
    this.compacted = compactedRevision;
  }

  protected collectNext(floor: number): number | undefined {
    if (!this.gcQueue.popReady(floor)) return undefined;
    const { key: id, revision, slot } = this.gcQueue.popped;
    const dropped = this.chains.dropOlderThan(id, slot, revision);
    return dropped === -1 ? this.collect(id, floor) : this.counted(dropped);
  }

  protected hasGarbage(floor: number): boolean {
    return this.gcQueue.hasReady(floor);
  }

  /** Values left in half-empty slabs by overwrites and GC move out a slab per slice. */
  protected override gcHousekeeping(): boolean {
    return this.chains.evacuationPending && this.chains.evacuateSlab();
  }

  stats(): StoreStats {
    return {
      ...this.coreStats(),
      versions: this.versions,
      versionsVisited: this.chains.versionsVisited,
      packedBytes: this.chains.allocatedBytes,
      engine: { name: "memory", memtableBytes: 0, frozenMemtables: 0, memtableFlushes: 0 },
    };
  }

  /** The key's state at `revision` (no readability check: callers did it, or hold a snapshot). */
  protected recordAt(key: string, revision: number): KeyRecord {
    const slot = this.slotAt(key, revision);
    return slot === NONE || this.chains.isTombstone(slot)
      ? missingRecord(key)
      : toRecord(key, this.chains.version(slot));
  }

  /** The slot of the version of `key` visible at `revision`, or NONE. */
  private slotAt(key: string, revision: number): number {
    const id = this.chains.index.find(toIndexKey(key));
    return id === NONE ? NONE : this.chains.versionAt(id, revision);
  }

  /** Compacts one key's versions at `floor` (a key left with none leaves the index). */
  private collect(id: number, floor: number, ringMax?: number): number {
    return this.counted(this.chains.compact(id, floor, ringMax));
  }

  /** Counts `dropped` versions as collected; returns it. */
  private counted(dropped: number): number {
    this.versions -= dropped;
    this.gcCollected += dropped;
    return dropped;
  }
}

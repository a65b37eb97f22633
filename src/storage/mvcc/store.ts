import BTreeModule from "sorted-btree";
import { assert, HomeKvError } from "../../errors.ts";
import type { ApplyResult, LogEntry } from "../ops.ts";
import { compareIndexKeys, fromIndexKey, toIndexKey } from "./key-order.ts";
import { SnapshotRegistry } from "./snapshots.ts";
import { append, compact, mayHoldGarbage, newest, readAt, type VersionChain, versionAt } from "./version-chain.ts";

/**
 * The MVCC state machine: an ordered index of keys, each with its chain of versions, and one global
 * revision counter. `apply` stamps a committed batch; reads name the revision they read at.
 *
 * A read at revision R sees every batch ≤ R whole and nothing after it. R must be readable: at least
 * the GC floor (the oldest open snapshot, or the current revision when none is open) and at most the
 * current revision. A write to an existing key costs O(1), a new key O(log n) (B+ tree insert); never O(n).
 */
export interface MvccStore {
  /** Revision of the last applied batch; 0 for an empty store. */
  readonly revision: number;
  apply(entry: LogEntry): ApplyResult;
  /** The values of `keys` at `revision` (default: current), `undefined` for a missing key. */
  read(keys: readonly string[], revision?: number): (Uint8Array | undefined)[];
  /** Live keys after `after` (exclusive) as of `revision`, in key order, at most `limit` of them. */
  scan(options: { after?: string; limit: number; revision: number }): KeyValue[];
  /** Fills an empty store with the live state of a checkpoint taken at `revision`. */
  restore(revision: number, entries: Iterable<KeyValue>): void;
  /** Pins the current revision until released: reads through it see exactly that state. */
  openSnapshot(): Snapshot;
  /** One bounded slice of garbage collection; see `GcSlice`. */
  collectGarbage(maxKeys: number): GcSlice;
  stats(): StoreStats;
}

/** A live key as of some revision, with the revision that last wrote it. */
export interface KeyValue {
  key: string;
  value: Uint8Array;
  revision: number;
}

export interface Snapshot {
  readonly revision: number;
  read(keys: readonly string[]): (Uint8Array | undefined)[];
  /** Idempotent: releasing twice is harmless. */
  release(): void;
}

export interface GcSlice {
  keysVisited: number;
  versionsCollected: number;
  /** True when more work is waiting now (another slice would find something to do). */
  more: boolean;
}

export interface StoreStats {
  revision: number;
  keys: number;
  valueBytes: number;
  versions: number;
  openSnapshots: number;
  gcFloor: number;
  gcRuns: number;
  gcVersionsCollected: number;
}

/**
 * sorted-btree is CommonJS with `exports.default = BTree`. Bun's runtime hands us the class for a
 * default import, but `bun build --compile` hands us the module object: accept both.
 */
const BTree: typeof BTreeModule =
  (BTreeModule as unknown as { default?: typeof BTreeModule }).default ?? BTreeModule;

export function createMvccStore(): MvccStore {
  return new BTreeMvccStore();
}

class BTreeMvccStore implements MvccStore {
  /**
   * Every key twice: a hash map for point reads and writes (O(1), whatever the size of the store)
   * and a B+ tree for key order (scans, checkpoints), touched only when a key appears or goes.
   * Both hold the same chain objects, keyed by index key (key-order.ts).
   */
  private readonly chains = new Map<string, VersionChain>();
  private readonly order = new BTree<string, VersionChain>(undefined, compareIndexKeys);
  private readonly snapshots = new SnapshotRegistry();
  private current = 0;
  private liveKeys = 0;
  private liveValueBytes = 0;
  private versions = 0;
  private gcRuns = 0;
  private gcCollected = 0;
  /**
   * GC work lists. `dirty`: keys written since GC last looked at them. `blocked`: keys GC looked at
   * that still hold versions an open snapshot may read; they are looked at again only once the floor
   * has passed `blockedAtFloor`, so a long-lived snapshot does not make GC spin over them.
   */
  private dirty = new Set<string>(); // index keys, like `blocked`
  private blocked = new Set<string>();
  private blockedAtFloor = 0;

  get revision(): number {
    return this.current;
  }

  apply(entry: LogEntry): ApplyResult {
    assert(entry.revision === this.current + 1, `apply revision ${entry.revision} after ${this.current}`);
    // Checked before anything changes, so that a failed assertion leaves the store as it was.
    if (entry.ops.length > 1) {
      assert(new Set(entry.ops.map((op) => op.key)).size === entry.ops.length, "a key appears twice in one batch");
    }
    // With no snapshot open, nothing can read below the revision being committed: the versions it
    // shadows are dropped on the spot rather than queued for GC (the common case costs no GC work).
    const collectNow = this.snapshots.size === 0;
    let deleted = 0;
    let collected = 0;
    for (const op of entry.ops) {
      const key = toIndexKey(op.key);
      const value = op.value;
      let chain = this.chains.get(key);
      const previous = chain === undefined ? null : (newest(chain)?.value ?? null);
      if (value === null && previous === null) continue; // deleting a missing key writes nothing
      if (chain === undefined) {
        chain = [];
        this.chains.set(key, chain);
        this.order.set(key, chain);
      }
      append(chain, { revision: entry.revision, value });
      this.versions++;
      if (previous !== null) {
        this.liveValueBytes -= previous.byteLength;
        this.liveKeys--;
      }
      if (value !== null) {
        this.liveValueBytes += value.byteLength;
        this.liveKeys++;
      } else {
        deleted++;
      }
      if (collectNow) collected += this.compactKey(key, chain, entry.revision);
      else if (mayHoldGarbage(chain)) this.dirty.add(key);
    }
    this.versions -= collected;
    this.gcCollected += collected;
    this.current = entry.revision;
    return { revision: entry.revision, deleted };
  }

  read(keys: readonly string[], revision = this.current): (Uint8Array | undefined)[] {
    this.assertReadable(revision);
    return keys.map((key) => {
      const chain = this.chains.get(toIndexKey(key));
      return chain === undefined ? undefined : readAt(chain, revision);
    });
  }

  scan({ after, limit, revision }: { after?: string; limit: number; revision: number }): KeyValue[] {
    this.assertReadable(revision);
    const out: KeyValue[] = [];
    const start = after === undefined ? undefined : toIndexKey(after);
    for (const [indexKey, chain] of this.order.entries(start)) {
      if (out.length === limit) break;
      if (indexKey === start) continue;
      const version = versionAt(chain, revision);
      if (version?.value) out.push({ key: fromIndexKey(indexKey), value: version.value, revision: version.revision });
    }
    return out;
  }

  restore(revision: number, entries: Iterable<KeyValue>): void {
    assert(this.current === 0 && this.chains.size === 0, "restore needs an empty store");
    for (const { key, value, revision: written } of entries) {
      assert(written <= revision, `checkpoint entry ${JSON.stringify(key)} is newer than the checkpoint`);
      const indexKey = toIndexKey(key);
      assert(!this.chains.has(indexKey), `checkpoint holds ${JSON.stringify(key)} twice`);
      const chain: VersionChain = [{ revision: written, value }];
      this.chains.set(indexKey, chain);
      this.order.set(indexKey, chain);
      this.liveKeys++;
      this.liveValueBytes += value.byteLength;
      this.versions++;
    }
    this.current = revision;
  }

  openSnapshot(): Snapshot {
    const revision = this.current;
    this.snapshots.open(revision);
    let open = true;
    return {
      revision,
      read: (keys) => {
        if (!open) throw new HomeKvError("E_UNAVAILABLE", "snapshot already released");
        return this.read(keys, revision);
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
    if (this.dirty.size === 0 && this.blocked.size > 0 && floor > this.blockedAtFloor) {
      this.dirty = this.blocked;
      this.blocked = new Set();
    }
    let keysVisited = 0;
    let versionsCollected = 0;
    for (const key of this.dirty) {
      if (keysVisited === maxKeys) break;
      keysVisited++;
      this.dirty.delete(key);
      const chain = this.chains.get(key);
      if (chain === undefined) continue;
      versionsCollected += this.compactKey(key, chain, floor);
      if (chain.length > 0 && mayHoldGarbage(chain)) this.block(key, floor);
    }
    this.versions -= versionsCollected;
    this.gcCollected += versionsCollected;
    if (keysVisited > 0) this.gcRuns++;
    const more = this.dirty.size > 0 || (this.blocked.size > 0 && floor > this.blockedAtFloor);
    return { keysVisited, versionsCollected, more };
  }

  stats(): StoreStats {
    return {
      revision: this.current,
      keys: this.liveKeys,
      valueBytes: this.liveValueBytes,
      versions: this.versions,
      openSnapshots: this.snapshots.size,
      gcFloor: this.floor(),
      gcRuns: this.gcRuns,
      gcVersionsCollected: this.gcCollected,
    };
  }

  /** The oldest revision anyone can still read. */
  private floor(): number {
    return this.snapshots.oldest() ?? this.current;
  }

  /** Compacts one chain at `floor`; a chain left empty takes its key out of the store. */
  private compactKey(key: string, chain: VersionChain, floor: number): number {
    const dropped = compact(chain, floor);
    if (chain.length === 0) {
      this.chains.delete(key);
      this.order.delete(key);
    }
    return dropped;
  }

  private block(key: string, floor: number): void {
    if (this.blocked.size === 0) this.blockedAtFloor = floor;
    this.blocked.add(key);
  }

  private assertReadable(revision: number): void {
    if (revision > this.current) {
      throw new HomeKvError("E_FUTURE_REVISION", `revision ${revision} is in the future (current ${this.current})`);
    }
    const floor = this.floor();
    if (revision < floor) {
      throw new HomeKvError("E_COMPACTED", `revision ${revision} is compacted (oldest readable ${floor})`);
    }
  }
}

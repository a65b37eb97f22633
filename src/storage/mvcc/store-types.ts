import type { StoreEngineName } from "../engine.ts";
import type { ApplyResult, Compare, KeyRecord, LateEntry, LogEntry } from "../ops.ts";
import type { ChainTuning, Version } from "./version-chain.ts";

/**
 * What a reader asks of the store (etcd's ReadView). Every read names the revision it reads at, or
 * takes the current one; it never waits and never changes anything.
 *
 * Revisions increase from command to command but may skip numbers (WriteView.apply). A read at R
 * sees exactly the commands at revisions ≤ R, whether or not one was applied at R itself: a read in a
 * gap sees the state the command before the gap left. R is readable from
 * the compacted revision (which may lie in a gap) up to the current revision; above it is the future.
 */
export interface ReadView {
  /** Revision of the last applied command (or of the checkpoint restored); 0 for an empty store. */
  readonly revision: number;
  /** Revisions below this one are compacted (unreadable); 0 when nothing is. Need not be a command's. */
  readonly compactedRevision: number;
  /** The values of `keys` at `revision` (default: current), `undefined` for a missing key. */
  read(keys: readonly string[], revision?: number): (Uint8Array | undefined)[];
  /** Like `read`, with each key's revisions, version count and TTL deadline. */
  readRecords(keys: readonly string[], revision?: number): KeyRecord[];
  /**
   * The revision of `key`'s newest version, a delete included (0: none retained): what a
   * transaction's write-conflict check asks (was the key written since my snapshot?).
   */
  newestRevision(key: string): number;
  /** The size of each key's value at `revision` (default: current), 0 for a missing key, without reading it out. */
  valueBytes(keys: readonly string[], revision?: number): number[];
  /** Whether every clause holds at `revision` (default: current). */
  evaluate(compares: readonly Compare[], revision?: number): boolean;
  /** Live keys of a range as of `revision`, in key order (or reversed); see `ScanOptions`. */
  scan(options: ScanOptions): ScanPage;
  /**
   * The changes to keys of [start, end) after revision `after`, oldest first (watchers catching
   * up): all of them up to `through`, the current revision unless the page was cut after `limit`
   * changes (whole revisions only: `through` is then the last change's). `after` need not be a
   * command's revision: the page starts with the first command above it. E_COMPACTED when `after` is
   * below the compacted revision (the changes after a revision are complete only while the state at
   * it is readable).
   */
  changes(options: { start?: string; end?: string; after: number; limit: number }): ChangePage;
}

/** How committed commands reach the store (etcd's WriteView): only the log applies, in order. */
export interface WriteView {
  readonly revision: number;
  /**
   * Applies a committed command at `entry.revision`, any integer above the current revision: the
   * next one on a single node and in one Raft group (dense), a timestamp on a partition (gaps where
   * other partitions' commands or a leader's unused window of timestamps went). A gap holds nothing.
   */
  apply(entry: LogEntry): ApplyResult;
  /**
   * Applies writes committed late, at `entry.revision` = C at or below the current revision: a
   * Percolator secondary, committed at its transaction's commit timestamp once the partition's
   * revision went past it. Taken only when no key it writes has a version at or above C (the
   * transaction's lock kept every other writer off the key since its start, below C) and C is above
   * the compacted revision: otherwise nothing is applied and it throws E_INVALID or E_COMPACTED.
   * The current and compacted revisions do not move. Reads at R ≥ C see the versions from now on,
   * snapshots pinned at R ≥ C included (readers at R resolved the lock first, so they waited for
   * this version, or read past it knowing C > R), but not a snapshot's dump for a checkpoint
   * (Snapshot.chains); reads below C do not. `changes(after)` with
   * after < C includes them; `onEvents` is not called (it goes in revision order, and a watcher
   * past C cannot take a change below it: a partition's watch reads `changes` only up to a resolved
   * timestamp below every open lock, so no late commit can fall behind it). The partition keeps its
   * compacted revision below every open lock's start timestamp, as TiKV's GC safe point does, so
   * that a commit is never refused for being compacted.
   */
  applyLate(entry: LateEntry): ApplyResult;
  /**
   * Raises the compacted revision to `revision` (at most the current one) with no command of its
   * own: a partition's compaction, ordered by its Raft log, not by a revision of the store's (its
   * revisions are commit timestamps, and the next one may already be taken). Returns the compacted
   * revision.
   */
  compactTo(revision: number): number;
  /** Fills an empty store from a checkpoint taken at `revision` (a command's, or one in a gap after it). */
  restore(revision: number, compactedRevision: number, chains: RestoreChains): void;
}

/**
 * What a checkpoint is written from (checkpoint-writer.ts): a pinned revision and the versions
 * retained at it — a store's, or chains read elsewhere at one revision.
 */
export interface CheckpointSource {
  /** Pins the current revision until released. */
  openSnapshot(): CheckpointSnapshot;
}

/**
 * The part of a snapshot a checkpoint reads: its chains, slice by slice. A slice may come later
 * than asked (a partitioned cluster's backup reads each from the partitions); an empty one ends them.
 */
export interface CheckpointSnapshot extends Pick<Snapshot, "revision" | "compactedRevision" | "release"> {
  chains(options: { after?: string; limit: number }): KeyChain[] | Promise<KeyChain[]>;
}

/** What the background GC drives. */
export interface GarbageSource {
  /**
   * One bounded slice of garbage collection: at most `maxKeys` keys, and it stops early once it has
   * collected four versions for each of them (one key's chain is compacted whole); see `GcSlice`.
   */
  collectGarbage(maxKeys: number): GcSlice;
}

/** The whole store, as the database that owns it sees it; every other caller takes one view. */
export interface MvccStore extends ReadView, WriteView, CheckpointSource, GarbageSource {
  /** Pins the current revision until released: reads at it, and the chains a checkpoint copies. */
  openSnapshot(): Snapshot;
  /**
   * Every retained version of keys after `after`, up to `revision`, late writes included however
   * late they came (a checkpoint dumps through its snapshot instead: Snapshot.chains).
   */
  dumpChains(options: { after?: string; limit: number; revision: number }): KeyChain[];
  stats(): StoreStats;
}

export interface StoreOptions {
  /**
   * Keep at least this many past revisions readable (automatic compaction); Infinity: all. A window
   * of revision numbers, not of commands: after a command at R, R − historyRevisions is readable.
   */
  historyRevisions?: number;
  /** Called for every put with a TTL, when it is applied or restored (the expiry sweeper). */
  onExpiry?: (key: string, revision: number, expiresAtMs: number) => void;
  /** Called after each applied command with what it changed, in order (watchers). */
  onEvents?: (revision: number, events: readonly ChangeEvent[]) => void;
  /**
   * Whether `onEvents` takes the next command's events (a watch hub: while a watcher is live).
   * When false the command makes none: no event object per write and no copy of the value it
   * replaces. Undefined: always.
   */
  eventsWanted?: () => boolean;
  /** Sizes of the packed layout (tests shrink them to reach its edges quickly). */
  tuning?: ChainTuning;
}

/** One change made by a command: a put (value set) or a delete. */
export interface ChangeEvent {
  readonly key: string;
  readonly value: Uint8Array | null;
  readonly revision: number;
  /** The value before the change; undefined when the key did not exist. */
  readonly previous: Uint8Array | undefined;
}

/** A change read back from the retained versions, with the key's version counters after it. */
export interface HistoryChange extends ChangeEvent {
  readonly createRevision: number;
  readonly version: number;
}

export interface ChangePage {
  /** By revision, then key. */
  changes: HistoryChange[];
  /** Every change of the range up to this revision is in `changes`. */
  through: number;
}

export interface ScanOptions {
  /** First key of the range (inclusive); default: the first key. */
  start?: string;
  /** End of the range (exclusive); default: past the last key. */
  end?: string;
  /** Continue after this key (exclusive) instead of at the range's edge: pagination. */
  after?: string;
  limit: number;
  reverse?: boolean;
  revision: number;
  /** Keys visited (live or not) before the page is cut short; bounds the work of one call. */
  visitMax?: number;
  /** Key and value bytes of a page at most (at least one record, whatever its size). */
  bytesMax?: number;
}

export interface ScanPage {
  records: KeyRecord[];
  /** The key to continue after, when more keys of the range may follow. */
  next?: string;
}

/** A key with its retained versions, oldest first. */
export interface KeyChain {
  key: string;
  versions: Version[];
}

/**
 * What a store is restored from: chains in key order, as objects; a checkpoint being read also
 * offers them in place (`cursor`), for an engine that stores keys and values as bytes. Either way
 * is taken once, whole.
 */
export type RestoreChains = Iterable<KeyChain> & { readonly cursor?: () => ChainCursor };

/**
 * Chains read in place, one at a time, oldest version first: no string, object or view is made per
 * key or version (at a million keys, those a restore made let the collected heap grow to twice
 * what the store holds). The fields describe the current chain and version; they, and the arrays
 * they point into, are valid until the next call.
 */
export interface ChainCursor {
  /** Moves to the next chain (skipping what is left of this one); false when none is left. */
  nextChain(): boolean;
  /** The chain's key, as UTF-8: `keyBytes[keyStart, keyStart + keyLength)`. */
  readonly keyBytes: Uint8Array;
  readonly keyStart: number;
  readonly keyLength: number;
  /** The key, decoded (a new string). */
  key(): string;
  /** Moves to the chain's next version; false after its newest. */
  nextVersion(): boolean;
  readonly revision: number;
  readonly createRevision: number;
  readonly version: number;
  readonly expiresAtMs: number | undefined;
  /** The value: `valueBytes[valueStart, valueStart + valueLength)`; a length of -1 is a tombstone. */
  readonly valueBytes: Uint8Array;
  readonly valueStart: number;
  readonly valueLength: number;
}

/**
 * A revision pinned until released: GC keeps what reads at it see. Reads and scans see the state at
 * the revision, with the writes committed late at or below it since (WriteView.applyLate: their
 * readers resolved the lock first). `chains` leaves those out: a checkpoint holds the state at the
 * moment it was pinned, whatever lands while it is copied, so that the log after it applies each
 * late commit once more onto a state without it.
 */
export interface Snapshot {
  readonly revision: number;
  /**
   * The compacted revision when it was pinned: the history from there on stays while it is open
   * (GC waits), so `chains` hold every version readable then, whatever was compacted since.
   */
  readonly compactedRevision: number;
  read(keys: readonly string[]): (Uint8Array | undefined)[];
  readRecords(keys: readonly string[]): KeyRecord[];
  scan(options: Omit<ScanOptions, "revision">): ScanPage;
  /** Every retained version of keys after `after` as the store stood when pinned: what a checkpoint holds. */
  chains(options: { after?: string; limit: number }): KeyChain[];
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
  compactedRevision: number;
  keys: number;
  valueBytes: number;
  versions: number;
  openSnapshots: number;
  gcFloor: number;
  gcRuns: number;
  gcVersionsCollected: number;
  /** Versions read by reads at a revision and by compactions, in all: their work, whatever a key's history. */
  versionsVisited: number;
  /** Bytes of the packed layout: the key index's arrays and key slabs, the version table and the value slabs. */
  packedBytes: number;
  engine: EngineStats;
}

/** Which engine holds the versions, and its memtables (all 0 on the memory engine, which has none). */
export interface EngineStats {
  name: StoreEngineName;
  /** Heap bytes of the memtable being written. */
  memtableBytes: number;
  /** Frozen memtables waiting for their flush (still read). */
  frozenMemtables: number;
  /** Memtables flushed since the store was made. */
  memtableFlushes: number;
}

import { HomeKvError } from "../errors.ts";
import type { BackupInfo } from "./backup/backup-dir.ts";
import { checkCompactTarget, type DatabaseReadView, planTxn, readBytes, txnWrites } from "./database-reads.ts";
import { createStore, type StoreEngine } from "./engine.ts";
import type { FlsmEngineStats } from "./flsm/disk-engine.ts";
import type { CommitLog } from "./log/commit-log.ts";
import { createMemoryLog } from "./log/memory-log.ts";
import { createGcScheduler } from "./mvcc/gc.ts";
import type { MvccStore, Snapshot, StoreOptions, StoreStats } from "./mvcc/store.ts";
import type { ApplyResult, Command, KeyRecord, TxnCommand, WriteOp } from "./ops.ts";
import { RequestIdTable } from "./request-ids.ts";
import { createDatabaseExpiry, type DatabaseExpiry, type ExpirySettings } from "./ttl/database-expiry.ts";
import type { WalStats } from "./wal/wal-writer.ts";
import { createWatchHub, type Watches, type WatchHub, type WatchHubOptions } from "./watch/watch-hub.ts";

/**
 * One store as a server hosts it: the log in front of the MVCC state machine, the GC that runs
 * behind it, and the watchers it feeds. A server may host many (one per partition, later); nothing
 * here is a module singleton. The server reaches the store only through this interface: reads
 * through its read view, writes through the log.
 */
export interface Database extends DatabaseReadView {
  /** Watches of key ranges, fed by every applied command (recovery included). */
  readonly watches: Watches;
  /**
   * Whether this member decides the leader-only duties (TTL expiry, time-based compaction): always
   * on a single server; in a cluster, the leader alone, so that every replica applies the same
   * deletes at the same revisions.
   */
  readonly leads: boolean;
  /** Commits the command atomically at one new revision; resolves once it is durable and visible. */
  propose(command: Command): Promise<ApplyResult>;
  /**
   * `propose` of a plain batch. With a `requestId` already applied, nothing is applied: the answer
   * is the first write's (`duplicate` set).
   */
  write(ops: readonly WriteOp[], requestId?: string): Promise<ApplyResult>;
  /**
   * Resolves once reads of this member are linearizable: at once on a single server (every write it
   * acknowledged is applied here); in a cluster, once a ReadIndex round has confirmed the leader and
   * this member has applied up to the read index. Reads made then see every write acknowledged
   * before the barrier was asked for.
   */
  readBarrier(): Promise<void>;
  /**
   * The records of `keys` (one per key asked, repeats included, each looked up once) at `revision`
   * (default: the current one), after a read barrier unless `serializable`. `checkReadBytes` is
   * shown the bytes the records would hold before a value is copied out, and may throw to refuse.
   */
  get(keys: readonly string[], options?: GetOptions): Promise<{ revision: number; records: KeyRecord[] }>;
  /**
   * Runs a transaction. One without writes is answered from the current revision with no commit
   * (nothing to order against), after a read barrier unless `serializable`; one with writes commits.
   * `checkReadBytes` is shown the bytes the transaction's gets would read before anything is read or
   * applied, and may throw to refuse it.
   */
  txn(txn: TxnCommand, options?: TxnOptions): Promise<TxnResult>;
  /** Compacts history below `revision`: E_FUTURE_REVISION past the current one, E_COMPACTED at or below the compacted one. */
  compact(revision: number): Promise<{ revision: number; compactedRevision: number }>;
  /** Pins the current revision until released. */
  openSnapshot(): Snapshot;
  stats(): DatabaseStats;
  /** Writes a checkpoint now (durable stores); resolves with what was written. */
  checkpoint(options?: CheckpointOptions): Promise<CheckpointInfo>;
  /**
   * Writes a consistent copy of the store as a new data directory at `dir` (an absolute path that
   * does not exist), while reads and writes go on: durable single servers (backup/backup-dir.ts).
   */
  backup(dir: string): Promise<BackupInfo>;
  /** Resolves when GC has nothing left to do (tests, benchmarks). */
  settleGc(): Promise<void>;
  /** Ends every watch, closes the log, then the rest. */
  close(): Promise<void>;
}

export interface GetOptions {
  revision?: number;
  serializable?: boolean;
  checkReadBytes?: (bytes: number) => void;
}

export interface TxnOptions {
  checkReadBytes?: (bytes: number) => void;
  /** As in `write`: a repeat answers with the first one's outcome, its gets read at its revision. */
  requestId?: string;
  /** A read-only transaction reads this member's state as it is, with no read barrier. */
  serializable?: boolean;
}

export interface TxnResult {
  revision: number;
  succeeded: boolean;
  /** What the chosen branch's gets read, in order. */
  reads: readonly KeyRecord[];
}

export interface CheckpointInfo {
  revision: number;
  entries: number;
  bytes: number;
  /** Date.now() when it completed. */
  atMs: number;
  durationMs: number;
}

/** A replicated database's Raft group, as its member sees it. */
export interface ReplicationStats {
  role: string;
  term: number;
  leader: string;
  commitIndex: number;
  appliedIndex: number;
  proposalsCommitted: number;
  proposalsDropped: number;
  leaderChanges: number;
  /** On the leader: the slowest follower's latest heartbeat round trip (0 elsewhere). */
  peerRoundTripUs: number;
  snapshotsSent: number;
  snapshotsFailed: number;
}

export interface DatabaseStats extends StoreStats {
  /** Undefined for an in-memory store. */
  wal?: WalStats;
  lastCheckpoint?: CheckpointInfo;
  recoveryMs: number;
  /** Undefined unless the database is a member of a replicated cluster. */
  replication?: ReplicationStats;
  /** The FLSM engine's figures (levels, flushes, block cache, stalls); undefined for the memory engine. */
  flsm?: FlsmEngineStats;
}

/** What every database takes, in memory or on disk. */
export interface StoreSettings extends StoreOptions {
  /** The engine that keeps the versions; memory by default. */
  engine?: StoreEngine;
  /** Keys one GC slice may visit in one event-loop turn. */
  gcSliceKeysMax?: number;
  /** The TTL sweeper's clock, timers and batch size (tests); defaults otherwise. */
  expiry?: ExpirySettings;
  /** Watch queue limits, and where a watcher's bug is reported. */
  watch?: WatchHubOptions;
}

export const GC_SLICE_KEYS_DEFAULT = 1_000;

/** A store with the observers a database gives it. */
export interface ObservedStore {
  store: MvccStore;
  expiry: DatabaseExpiry;
  watchHub: WatchHub;
}

/**
 * A new, empty store with the observers a database gives it: the TTL sweeper and the watch hub are
 * made before the store, because the store tells them of every version while it is restored and
 * replayed, not only once it serves.
 */
export function createObservedStore(options: StoreSettings, report?: (line: string) => void): ObservedStore {
  const { expiry, watchHub } = createStoreObservers(options, report);
  return { store: createStore(options.engine, expiry.storeOptions), expiry, watchHub };
}

/** The observers alone, for a store made elsewhere from `expiry.storeOptions` (an engine on disk). */
export function createStoreObservers(
  options: StoreSettings,
  report?: (line: string) => void,
): Omit<ObservedStore, "store"> {
  const watchHub = createWatchHub(options.watch);
  const given = options.onEvents;
  const onEvents: StoreOptions["onEvents"] = given
    ? (revision, events) => {
        given(revision, events);
        watchHub.publish(revision, events);
      }
    : watchHub.publish;
  // Events are made only while the hub has a live watcher, unless the caller takes them too.
  const eventsWanted = given ? undefined : watchHub.listening;
  return { expiry: createDatabaseExpiry({ ...options, onEvents, eventsWanted }, report), watchHub };
}

export interface CheckpointOptions {
  /**
   * A cluster member checkpoints what it has applied, without first catching up with its group's
   * commit (as a serializable read): it may miss writes acknowledged elsewhere, and needs no
   * quorum. A single server's state is always the latest, so it changes nothing there.
   */
  serializable?: boolean;
}

/** Parts a database is made of; `createDatabase` and `openDurableDatabase` supply them. */
export interface DatabaseParts {
  store: MvccStore;
  watchHub: WatchHub;
  log: CommitLog<ApplyResult>;
  gcSliceKeysMax?: number;
  walStats?: () => WalStats;
  checkpoint: (options?: CheckpointOptions) => Promise<CheckpointInfo>;
  lastCheckpoint?: () => CheckpointInfo | undefined;
  backup: (dir: string) => Promise<BackupInfo>;
  recoveryMs?: number;
  /** Called after each commit (the checkpoint trigger). */
  afterWrite?: () => void;
  /** Runs at close, after the log has closed and before GC stops. */
  onClose?: () => Promise<void>;
  /** The TTL sweeper: started here once the database can propose, stopped before the log closes. */
  expiry?: DatabaseExpiry;
  /** What makes reads linearizable (a ReadIndex round in a cluster); nothing on a single server. */
  readBarrier?: () => Promise<void>;
  /**
   * The request ids applied, when the state machine keeps them (a replicated store, fed at apply);
   * otherwise the database keeps its own, fed as its writes commit.
   */
  requestIds?: RequestIdTable;
  replicationStats?: () => ReplicationStats;
  engineStats?: () => FlsmEngineStats;
  /** Whether this member leads its group (a replicated store); a single server always does. */
  leads?: () => boolean;
}

export function assembleDatabase(parts: DatabaseParts): Database {
  const { store, log, watchHub } = parts;
  const gc = createGcScheduler(store, { sliceKeysMax: parts.gcSliceKeysMax ?? GC_SLICE_KEYS_DEFAULT });
  const propose = async (command: Command, requestId?: string) => {
    const result = await log.propose(command, requestId);
    gc.kick();
    parts.afterWrite?.();
    return result;
  };
  const proposeOnce = identifiedWrites(propose, parts.requestIds);
  const leads = parts.leads ?? (() => true);
  // A follower's sweeper keeps its queue, and proposes once it comes to lead.
  parts.expiry?.start(
    (command) =>
      leads() ? propose(command) : Promise.reject(new HomeKvError("E_NOT_LEADER", "a follower expires no keys")),
    store,
  );
  const readBarrier = parts.readBarrier ?? (() => Promise.resolve());
  watchHub.attach(store);
  const read = (keys: readonly string[], revision = store.revision) => ({
    revision,
    records: store.readRecords(keys, revision),
  });
  return {
    get revision() {
      return store.revision;
    },
    get compactedRevision() {
      return store.compactedRevision;
    },
    read,
    readBytes: (keys, revision = store.revision) => readBytes(store, keys, revision),
    scan: (options) => store.scan(options),
    watches: watchHub,
    get leads() {
      return leads();
    },
    propose,
    write: (ops, requestId) => proposeOnce({ ops }, requestId),
    readBarrier,
    async get(keys, { revision, serializable = false, checkReadBytes } = {}) {
      if (!serializable) await readBarrier();
      const at = revision ?? store.revision;
      // Measured in the store first: values are copied out only for an answer within the limit.
      checkReadBytes?.(readBytes(store, keys, at));
      const unique = [...new Set(keys)];
      const { records } = read(unique, at);
      if (unique.length === keys.length) return { revision: at, records };
      const byKey = new Map(unique.map((key, i) => [key, records[i]!]));
      return { revision: at, records: keys.map((key) => byKey.get(key)!) };
    },
    async txn(txn, { checkReadBytes, serializable = false, requestId } = {}) {
      const writes = txnWrites(txn);
      if (!writes && !serializable) await readBarrier();
      // Planned after the barrier: the state it reads may have moved on while it waited.
      const plan = planTxn(store, txn);
      checkReadBytes?.(plan.readBytes);
      if (!writes) {
        return { revision: plan.revision, succeeded: plan.succeeded, reads: read(plan.gets, plan.revision).records };
      }
      const result = await proposeOnce({ kind: "txn", txn }, requestId);
      const succeeded = result.succeeded ?? false;
      if (!result.duplicate) return { revision: result.revision, succeeded, reads: result.reads ?? [] };
      const gets = (succeeded ? txn.success : txn.failure).flatMap((op) => ("get" in op ? [op.get] : []));
      return { revision: result.revision, succeeded, reads: read(gets, result.revision).records };
    },
    async compact(revision) {
      checkCompactTarget(revision, store);
      const result = await propose({ kind: "compact", compactTo: revision });
      return { revision: result.revision, compactedRevision: store.compactedRevision };
    },
    openSnapshot() {
      const snapshot = store.openSnapshot();
      return {
        ...snapshot,
        release() {
          snapshot.release();
          gc.kick();
        },
      };
    },
    stats: () => ({
      ...store.stats(),
      wal: parts.walStats?.(),
      lastCheckpoint: parts.lastCheckpoint?.(),
      recoveryMs: parts.recoveryMs ?? 0,
      replication: parts.replicationStats?.(),
      flsm: parts.engineStats?.(),
    }),
    checkpoint: parts.checkpoint,
    backup: parts.backup,
    settleGc: () => gc.drain(),
    async close() {
      watchHub.close();
      parts.expiry?.stop();
      await log.close();
      await parts.onClose?.();
      gc.stop();
    },
  };
}

/**
 * `propose` for writes that may carry a request id: one already applied is answered with what it
 * did, one in flight with its outcome, without proposing again. `kept` is the state machine's own
 * table when it keeps one (it also skips a repeat that reached the log twice); otherwise one is
 * kept here, fed as writes commit.
 */
function identifiedWrites(
  propose: (command: Command, requestId?: string) => Promise<ApplyResult>,
  kept: RequestIdTable | undefined,
): (command: Command, requestId?: string) => Promise<ApplyResult> {
  const applied = kept ?? new RequestIdTable();
  const inFlight = new Map<string, Promise<ApplyResult>>();
  return (command, requestId) => {
    if (!requestId) return propose(command);
    const seen = applied.get(requestId);
    if (seen) return Promise.resolve({ ...seen, duplicate: true });
    const pending = inFlight.get(requestId);
    if (pending) return pending.then((result) => ({ ...result, reads: undefined, duplicate: true }));
    const done = propose(command, requestId)
      .then((result) => {
        if (applied.get(requestId) === undefined) applied.remember(requestId, result);
        return result;
      })
      .finally(() => inFlight.delete(requestId));
    inFlight.set(requestId, done);
    return done;
  };
}

/**
 * A store that lives in memory only (`serve --in-memory`, tests). `nextRevision`: how its log stamps
 * a command after the one at `last` (default: `last + 1`; tests stamp revisions with gaps).
 */
export function createDatabase(options: StoreSettings = {}, nextRevision?: (last: number) => number): Database {
  const { store, expiry, watchHub } = createObservedStore(options);
  return assembleDatabase({
    store,
    expiry,
    watchHub,
    log: createMemoryLog({ lastRevision: store.revision, apply: (entry) => store.apply(entry), nextRevision }),
    gcSliceKeysMax: options.gcSliceKeysMax,
    checkpoint: () =>
      Promise.reject(
        new HomeKvError(
          "E_NOT_PERSISTENT",
          "this server keeps no data on disk (--in-memory): there is nothing to checkpoint",
        ),
      ),
    backup: () =>
      Promise.reject(
        new HomeKvError(
          "E_NOT_PERSISTENT",
          "this server keeps no data on disk (--in-memory): there is nothing to back up",
        ),
      ),
  });
}

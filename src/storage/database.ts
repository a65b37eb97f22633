import { HomeKvError } from "../errors.ts";
import type { CommitLog } from "./log/commit-log.ts";
import { createMemoryLog } from "./log/memory-log.ts";
import { createGcScheduler } from "./mvcc/gc.ts";
import { createMvccStore, type MvccStore, type Snapshot, type StoreOptions, type StoreStats } from "./mvcc/store.ts";
import type { ApplyResult, Command, KeyRecord, WriteOp } from "./ops.ts";
import { createDatabaseExpiry, type DatabaseExpiry, type ExpirySettings } from "./ttl/database-expiry.ts";
import type { WalStats } from "./wal/wal-writer.ts";

/**
 * One store as a server hosts it: the log in front of the MVCC state machine, and the GC that runs
 * behind it. A server may host many (one per partition, later); nothing here is a module singleton.
 */
export interface Database {
  /** The store behind: reads go to it directly (they never wait for the log). */
  readonly store: MvccStore;
  /** Reads every key at one revision (default: the last committed one). Never waits for a write. */
  read(keys: readonly string[], revision?: number): { revision: number; records: KeyRecord[] };
  /** Commits the command atomically at one new revision; resolves once it is durable and visible. */
  propose(command: Command): Promise<ApplyResult>;
  /** `propose` of a plain batch. */
  write(ops: readonly WriteOp[]): Promise<ApplyResult>;
  openSnapshot(): Snapshot;
  stats(): DatabaseStats;
  /** Writes a checkpoint now (durable stores); resolves with what was written. */
  checkpoint(): Promise<CheckpointInfo>;
  /** Resolves when GC has nothing left to do (tests, benchmarks). */
  settleGc(): Promise<void>;
  close(): Promise<void>;
}

export interface CheckpointInfo {
  revision: number;
  entries: number;
  bytes: number;
  /** Date.now() when it completed. */
  atMs: number;
  durationMs: number;
}

export interface DatabaseStats extends StoreStats {
  /** Undefined for an in-memory store. */
  wal?: WalStats;
  lastCheckpoint?: CheckpointInfo;
  recoveryMs: number;
}

/** What every database takes, in memory or on disk. */
export interface StoreSettings extends StoreOptions {
  /** Keys one GC slice may visit in one event-loop turn. */
  gcSliceKeysMax?: number;
  /** The TTL sweeper's clock, timers and batch size (tests); defaults otherwise. */
  expiry?: ExpirySettings;
}

export const GC_SLICE_KEYS_DEFAULT = 1_000;

/** Parts a database is made of; `createDatabase` and `openDurableDatabase` supply them. */
export interface DatabaseParts {
  store: MvccStore;
  log: CommitLog<ApplyResult>;
  gcSliceKeysMax?: number;
  walStats?: () => WalStats;
  checkpoint: () => Promise<CheckpointInfo>;
  lastCheckpoint?: () => CheckpointInfo | undefined;
  recoveryMs?: number;
  /** Called after each commit (the checkpoint trigger). */
  afterWrite?: () => void;
  /** Runs at close, after the log has closed and before GC stops. */
  onClose?: () => Promise<void>;
  /** The TTL sweeper: started here once the database can propose, stopped before the log closes. */
  expiry?: DatabaseExpiry;
}

export function assembleDatabase(parts: DatabaseParts): Database {
  const { store, log } = parts;
  const gc = createGcScheduler(store, { sliceKeysMax: parts.gcSliceKeysMax ?? GC_SLICE_KEYS_DEFAULT });
  const propose = async (command: Command) => {
    const result = await log.propose(command);
    gc.kick();
    parts.afterWrite?.();
    return result;
  };
  parts.expiry?.start(propose, store);
  return {
    store,
    read(keys, revision = store.revision) {
      return { revision, records: store.readRecords(keys, revision) };
    },
    propose,
    write: (ops) => propose({ ops }),
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
    }),
    checkpoint: parts.checkpoint,
    settleGc: () => gc.drain(),
    async close() {
      parts.expiry?.stop();
      await log.close();
      await parts.onClose?.();
      gc.stop();
    },
  };
}

/** A store that lives in memory only (`serve --in-memory`, tests). */
export function createDatabase(options: StoreSettings = {}): Database {
  const expiry = createDatabaseExpiry(options);
  const store = createMvccStore(expiry.storeOptions);
  return assembleDatabase({
    store,
    expiry,
    log: createMemoryLog({ lastRevision: store.revision, apply: (entry) => store.apply(entry) }),
    gcSliceKeysMax: options.gcSliceKeysMax,
    checkpoint: () =>
      Promise.reject(
        new HomeKvError(
          "E_NOT_PERSISTENT",
          "this server keeps no data on disk (--in-memory): there is nothing to checkpoint",
        ),
      ),
  });
}

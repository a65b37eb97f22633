import type { CommitLog } from "./log/commit-log.ts";
import { createMemoryLog } from "./log/memory-log.ts";
import { createGcScheduler } from "./mvcc/gc.ts";
import { createMvccStore, type Snapshot, type StoreStats } from "./mvcc/store.ts";
import type { ApplyResult, WriteOp } from "./ops.ts";

/**
 * One store as a server hosts it: the log in front of the MVCC state machine, and the GC that runs
 * behind it. A server may host many (one per partition, later); nothing here is a module singleton.
 */
export interface Database {
  /** Reads every key at one revision: the last committed one. Never waits for a write. */
  read(keys: readonly string[]): { revision: number; values: (Uint8Array | undefined)[] };
  /** Commits the batch atomically at one new revision. */
  write(ops: readonly WriteOp[]): Promise<ApplyResult>;
  openSnapshot(): Snapshot;
  stats(): StoreStats;
  /** Resolves when GC has nothing left to do (tests, benchmarks). */
  settleGc(): Promise<void>;
  close(): Promise<void>;
}

export interface DatabaseOptions {
  /** Keys one GC slice may visit in one event-loop turn. */
  gcSliceKeysMax?: number;
}

export const GC_SLICE_KEYS_DEFAULT = 1_000;

export function createDatabase(options: DatabaseOptions = {}): Database {
  const store = createMvccStore();
  const gc = createGcScheduler(store, { sliceKeysMax: options.gcSliceKeysMax ?? GC_SLICE_KEYS_DEFAULT });
  const log: CommitLog<ApplyResult> = createMemoryLog({
    lastRevision: store.revision,
    apply: (entry) => store.apply(entry),
  });
  return {
    read(keys) {
      const revision = store.revision;
      return { revision, values: store.read(keys, revision) };
    },
    async write(ops) {
      const result = await log.propose(ops);
      gc.kick();
      return result;
    },
    openSnapshot() {
      const snapshot = store.openSnapshot();
      return {
        revision: snapshot.revision,
        read: (keys) => snapshot.read(keys),
        release() {
          snapshot.release();
          gc.kick();
        },
      };
    },
    stats: () => store.stats(),
    settleGc: () => gc.drain(),
    async close() {
      await log.close();
      gc.stop();
    },
  };
}

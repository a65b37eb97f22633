import type { TxnCoordinator } from "../cluster/txn/coordinator.ts";
import { LOCK_ONLY, type Mutation } from "../cluster/txn/percolator.ts";
import { HomeKvError } from "../errors.ts";
import type { Database, DatabaseStats, TxnResult } from "../storage/database.ts";
import { compareHolds } from "../storage/mvcc/compare.ts";
import {
  type ApplyResult,
  isWrite,
  type KeyRecord,
  recordBytes,
  type TxnCommand,
  type TxnOp,
  type WriteOp,
} from "../storage/ops.ts";
import type { Watches } from "../storage/watch/watch-hub.ts";

/** Rounds of read-then-write a Del makes when other writes keep landing on its keys between the two. */
const DELETE_ATTEMPTS = 5;
/** Runs of a transaction that lost to another write on a key it read, before the conflict is answered. */
const TXN_ATTEMPTS = 10;

export interface PartitionedDatabaseParts {
  coordinator: Pick<TxnCoordinator, "get" | "commit" | "timestamp">;
  /** The node's figures: its partitions' stores where it leads them. */
  stats(): DatabaseStats;
  close(): Promise<void>;
}

/**
 * The Database a partitioned node serves the API through: Get and Set/Del on any keys, wherever
 * their partitions are, through the transaction coordinator. A multi-key write is atomic across
 * partitions (Percolator's two phases); a read takes a timestamp from the oracle (or reads at the
 * revision asked) and never sees part of a write. Revisions are the oracle's timestamps: they
 * increase, with gaps.
 *
 * A record carries its value, mod and create revisions and version as its partition keeps them.
 * A Txn runs optimistically (see `txn`). What is not built yet is refused with E_UNIMPLEMENTED naming it.
 */
export function partitionedDatabase(parts: PartitionedDatabaseParts): Database {
  const { coordinator } = parts;
  /** The newest revision this node has answered with. */
  let revision = 0;
  const seen = (ts: number) => {
    revision = Math.max(revision, ts);
    return ts;
  };

  const readAt = async (keys: readonly string[], at?: number) => {
    if (at !== undefined) {
      // A read above every timestamp handed out could miss a write committed below it later.
      const now = await coordinator.timestamp();
      if (at > now)
        throw new HomeKvError("E_FUTURE_REVISION", `revision ${at} is in the future (the newest is ${now})`);
    }
    const read = await coordinator.get(keys, at);
    const records: KeyRecord[] = keys.map((key, i) => ({ key, ...read.records[i]! }));
    return { revision: seen(read.ts), records };
  };

  const write = async (ops: readonly WriteOp[]): Promise<ApplyResult> => {
    if (ops.some((op) => op.expiresAtMs !== undefined))
      throw new HomeKvError("E_INVALID", "TTLs are not available on a partitioned cluster yet");
    const mutations = ops.map(({ key, value }) => ({ key, value }));
    if (ops.every((op) => op.value !== null))
      return { revision: seen(await coordinator.commit(mutations)), deleted: 0 };
    // What a delete removed is what existed when it committed: read, then commit refused if a key
    // was written in between (then read again).
    const deletes = ops.filter((op) => op.value === null).map((op) => op.key);
    for (let attempt = 1; ; attempt++) {
      const { ts, records } = await coordinator.get(deletes);
      try {
        const committed = await coordinator.commit(mutations, ts);
        return { revision: seen(committed), deleted: records.filter((record) => record.value !== undefined).length };
      } catch (error) {
        if (!(error instanceof HomeKvError && error.code === "E_CONFLICT") || attempt === DELETE_ATTEMPTS) throw error;
      }
    }
  };

  /**
   * A transaction: its compares and the chosen branch's gets read at one timestamp; its writes
   * committed with those keys locked too (lock-only where not written), refused if any was written
   * since the read — then the whole transaction runs again, compares and all, as etcd would have
   * ordered it after that write.
   */
  const txn = async (command: TxnCommand, checkReadBytes?: (bytes: number) => void): Promise<TxnResult> => {
    const branchGets = (ops: readonly TxnOp[]) => ops.flatMap((op) => (isWrite(op) ? [] : [op.get]));
    const keys = [
      ...new Set([
        ...command.compares.map((clause) => clause.key),
        ...branchGets(command.success),
        ...branchGets(command.failure),
      ]),
    ];
    for (let attempt = 1; ; attempt++) {
      const read = await readAt(keys);
      const found = new Map(read.records.map((record) => [record.key, record]));
      const succeeded = command.compares.every((clause) => compareHolds(clause, found.get(clause.key)!));
      const ops = succeeded ? command.success : command.failure;
      const writes = ops.filter(isWrite);
      if (writes.some((op) => op.expiresAtMs !== undefined))
        throw new HomeKvError("E_INVALID", "TTLs are not available on a partitioned cluster yet");
      // Each get sees the writes before it in the branch (their revision is the commit's, set below).
      const pending = new Map<string, WriteOp>();
      const gets: { key: string; write: WriteOp | undefined }[] = [];
      for (const op of ops)
        if (isWrite(op)) pending.set(op.key, op);
        else gets.push({ key: op.get, write: pending.get(op.get) });
      const recordAt = (revision: number, { key, write }: { key: string; write: WriteOp | undefined }) =>
        write ? writtenRecord(found.get(key)!, write, revision) : found.get(key)!;
      checkReadBytes?.(gets.reduce((sum, get) => sum + recordBytes(recordAt(read.revision, get)), 0));
      if (writes.length === 0)
        return { revision: read.revision, succeeded, reads: gets.map((get) => recordAt(read.revision, get)) };
      const written = new Set(writes.map((op) => op.key));
      const locked = [...command.compares.map((clause) => clause.key), ...gets.map((get) => get.key)];
      const mutations: Mutation[] = [
        ...writes.map(({ key, value }) => ({ key, value })),
        ...[...new Set(locked)].filter((key) => !written.has(key)).map((key) => ({ key, value: LOCK_ONLY })),
      ];
      try {
        const committed = seen(await coordinator.commit(mutations, read.revision));
        return { revision: committed, succeeded, reads: gets.map((get) => recordAt(committed, get)) };
      } catch (error) {
        if (!(error instanceof HomeKvError && error.code === "E_CONFLICT") || attempt === TXN_ATTEMPTS) throw error;
      }
    }
  };

  return {
    get revision() {
      return revision;
    },
    compactedRevision: 0,
    read: () => notYet("reads of a revision's whole view"),
    readBytes: () => notYet("reads of a revision's whole view"),
    scan: () => notYet("Scan"),
    watches: refusingWatches,
    leads: false,
    propose: () => notYet("commands other than Set and Del"),
    write: (ops) => write(ops),
    readBarrier: () => Promise.resolve(),
    async get(keys, { revision: at, checkReadBytes } = {}) {
      // Every read is linearizable here (a timestamp from the oracle): `serializable` reads the same.
      const unique = [...new Set(keys)];
      const read = await readAt(unique, at);
      const byKey = new Map(read.records.map((record) => [record.key, record]));
      const records = keys.map((key) => byKey.get(key)!);
      checkReadBytes?.(records.reduce((sum, record) => sum + recordBytes(record), 0));
      return { revision: read.revision, records };
    },
    txn: (command, { checkReadBytes } = {}) => txn(command, checkReadBytes),
    compact: () => notYet("Compact"),
    openSnapshot: () => notYet("Scan"),
    stats: () => ({ ...parts.stats(), revision }),
    checkpoint: () => notYet("Checkpoint (a partition's state is its Raft log)"),
    settleGc: () => Promise.resolve(),
    close: () => parts.close(),
  };
}

/** The record a get finds after its transaction's `write` of the key at `revision` (over `before`, the key then). */
function writtenRecord(before: KeyRecord, write: WriteOp, revision: number): KeyRecord {
  if (write.value === null) return { key: write.key, value: undefined, modRevision: 0, createRevision: 0, version: 0 };
  const existed = before.value !== undefined;
  return {
    key: write.key,
    value: write.value,
    modRevision: revision,
    createRevision: existed ? before.createRevision : revision,
    version: existed ? before.version + 1 : 1,
  };
}

function notYet(what: string): never {
  throw new HomeKvError("E_UNIMPLEMENTED", `${what} across partitions is not available yet`);
}

const refusingWatches: Watches = {
  watch: () => notYet("Watch"),
  size: 0,
  close() {},
};

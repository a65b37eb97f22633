import type { Committed, TxnCoordinator } from "../cluster/txn/coordinator.ts";
import { LOCK_ONLY, type Mutation } from "../cluster/txn/percolator.ts";
import { HomeKvError } from "../errors.ts";
import type { BackupInfo } from "../storage/backup/backup-dir.ts";
import type { CheckpointInfo, CheckpointOptions, Database, DatabaseStats, TxnResult } from "../storage/database.ts";
import { txnWrites } from "../storage/database-reads.ts";
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
import type { RememberedWrite } from "../storage/request-ids.ts";
import type { Watches } from "../storage/watch/watch-hub.ts";
import { delay, realTimers, type Timers } from "../timers.ts";

/**
 * How long a write that loses to others on its keys (a Set meeting a transaction's lock, a Del or
 * Txn whose keys were written since it read them) keeps trying before it is answered ABORTED: past
 * the TTL of a dead coordinator's locks (3 s), which a writer, as a reader, waits out, and long
 * enough for 30 writers of the same keys on three partitions to take their turns on a loaded
 * 2-core machine (5 s was not: test/cluster/review/partitioned-faults.test.ts failed 1 run in 4).
 */
const CONFLICT_WAIT_MS = 15_000;
/** The longest pause between two runs: each is random below a bound that doubles from 1 ms up to this. */
const CONFLICT_PAUSE_MS_MAX = 64;

export interface PartitionedDatabaseParts {
  coordinator: Pick<TxnCoordinator, "get" | "commit" | "timestampNotBelow" | "compact">;
  /** The cluster's partition count (throws while this node cannot route). */
  partitions: () => number;
  /** Watches across partitions (partitioned-watches.ts). */
  watches: Watches;
  /** The node's figures: its partitions' stores where it leads them. */
  stats(): DatabaseStats;
  /** A checkpoint of each partition's replica on this node (the Checkpoint call). */
  checkpoint(options?: CheckpointOptions): Promise<CheckpointInfo>;
  /** A backup of every partition at one timestamp (the Backup call: partitioned-backup.ts). */
  backup(dir: string): Promise<BackupInfo>;
  close(): Promise<void>;
  /** The clock and pauses of a write that loses to others (default: the real ones). */
  timers?: Timers;
  /** Draws those pauses (default Math.random). */
  random?: () => number;
}

/**
 * The Database a partitioned node serves the API through: Get and Set/Del on any keys, wherever
 * their partitions are, through the transaction coordinator. A multi-key write is atomic across
 * partitions (Percolator's two phases); a read takes a timestamp from the oracle (or reads at the
 * revision asked) and never sees part of a write. Revisions are the oracle's timestamps: they
 * increase, with gaps.
 *
 * A record carries its value, mod and create revisions and version as its partition keeps them.
 * A Txn runs optimistically (see `txn`). A write with a request id commits at most once (the
 * coordinator decides it in the id's own partition). What is not built yet is refused with
 * E_UNIMPLEMENTED naming it.
 */
export function partitionedDatabase(parts: PartitionedDatabaseParts): Database {
  const { coordinator } = parts;
  const retryConflicts = conflictRetries(parts.timers ?? realTimers, parts.random ?? Math.random);
  /** The newest revision this node has answered with. */
  let revision = 0;
  /** The compacted revision of every partition, as far as this node's compactions know. */
  let compacted = 0;
  const seen = (ts: number) => {
    revision = Math.max(revision, ts);
    return ts;
  };

  const readAt = async (keys: readonly string[], at?: number) => {
    if (at !== undefined) await coordinator.timestampNotBelow(at);
    const read = await coordinator.get(keys, at);
    const records: KeyRecord[] = keys.map((key, i) => ({ key, ...read.records[i]! }));
    return { revision: seen(read.ts), records };
  };

  /** A transaction's answer when its request id was applied before: that one's branch, read at its revision. */
  const duplicateTxn = async (command: TxnCommand, first: RememberedWrite): Promise<TxnResult> => {
    const succeeded = first.succeeded ?? false;
    const gets = branchGets(succeeded ? command.success : command.failure);
    const reads = gets.length === 0 ? [] : (await readAt(gets, first.revision)).records;
    return { revision: first.revision, succeeded, reads };
  };

  /** What a write answers: its revision and deletes, or, for a request id applied before, the first write's. */
  const answer = ({ ts, duplicate }: Committed, deleted: number): ApplyResult =>
    duplicate ? { ...duplicate, duplicate: true } : { revision: seen(ts), deleted };

  const write = (ops: readonly WriteOp[], requestId?: string): Promise<ApplyResult> => {
    const mutations = ops.map(mutationOf);
    const deletes = ops.filter((op) => op.value === null).map((op) => op.key);
    const request = (deleted: number) => (requestId ? { id: requestId, deleted } : undefined);
    return retryConflicts(async () => {
      // A Set, as etcd's Put, loses to no other write: a conflict (a transaction holding a key) is waited out.
      if (deletes.length === 0) return answer(await coordinator.commit(mutations, undefined, request(0)), 0);
      // What a delete removed is what existed when it committed: read, then commit refused if a key
      // was written in between (then all again).
      const { ts, records } = await coordinator.get(deletes);
      const deleted = records.filter((record) => record.value !== undefined).length;
      return answer(await coordinator.commit(mutations, ts, request(deleted)), deleted);
    });
  };

  /**
   * A transaction: its compares and the chosen branch's gets read at one timestamp; its writes
   * committed with those keys locked too (lock-only where not written), refused if any was written
   * since the read — then the whole transaction runs again, compares and all, as etcd would have
   * ordered it after that write.
   */
  const txn = async (
    command: TxnCommand,
    checkReadBytes?: (bytes: number) => void,
    requestId?: string,
  ): Promise<TxnResult> => {
    const keys = [
      ...new Set([
        ...command.compares.map((clause) => clause.key),
        ...branchGets(command.success),
        ...branchGets(command.failure),
      ]),
    ];
    return retryConflicts(async () => {
      const read = await readAt(keys);
      const found = new Map(read.records.map((record) => [record.key, record]));
      const succeeded = command.compares.every((clause) => compareHolds(clause, found.get(clause.key)!));
      const ops = succeeded ? command.success : command.failure;
      const writes = ops.filter(isWrite);
      // Each get sees the writes before it in the branch (their revision is the commit's, set below).
      const pending = new Map<string, WriteOp>();
      const gets: { key: string; write: WriteOp | undefined }[] = [];
      for (const op of ops)
        if (isWrite(op)) pending.set(op.key, op);
        else gets.push({ key: op.get, write: pending.get(op.get) });
      const recordAt = (revision: number, { key, write }: { key: string; write: WriteOp | undefined }) =>
        write ? writtenRecord(found.get(key)!, write, revision) : found.get(key)!;
      checkReadBytes?.(gets.reduce((sum, get) => sum + recordBytes(recordAt(read.revision, get)), 0));
      // A branch that writes nothing commits nothing, unless the request has an id and its other
      // branch writes: then the branch taken is decided (and remembered) as a server's log decides it,
      // or a retry could run the compares again and take the branch that writes.
      if (writes.length === 0 && !(requestId && txnWrites(command)))
        return { revision: read.revision, succeeded, reads: gets.map((get) => recordAt(read.revision, get)) };
      const written = new Set(writes.map((op) => op.key));
      const locked = [...command.compares.map((clause) => clause.key), ...gets.map((get) => get.key)];
      const mutations: Mutation[] = [
        ...writes.map(mutationOf),
        ...[...new Set(locked)].filter((key) => !written.has(key)).map((key) => ({ key, value: LOCK_ONLY })),
      ];
      const request = requestId ? { id: requestId, deleted: 0, succeeded } : undefined;
      const { ts, duplicate } = await coordinator.commit(mutations, read.revision, request);
      // A request id applied before: the first transaction's branch, its gets read at its revision.
      if (duplicate) return duplicateTxn(command, duplicate);
      const committed = seen(ts);
      return { revision: committed, succeeded, reads: gets.map((get) => recordAt(committed, get)) };
    });
  };

  return {
    get revision() {
      return revision;
    },
    get compactedRevision() {
      return compacted;
    },
    read: () => notYet("reads of a revision's whole view"),
    readBytes: () => notYet("reads of a revision's whole view"),
    // Scan pages are read across partitions by partitioned-scans.ts, not through a revision's view.
    scan: () => notYet("Scan through the database's view"),
    watches: parts.watches,
    leads: false,
    propose: () => notYet("commands other than Set and Del"),
    write: (ops, requestId) => write(ops, requestId),
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
    txn: (command, { checkReadBytes, requestId } = {}) => txn(command, checkReadBytes, requestId),
    async compact(target) {
      const now = seen(await coordinator.timestampNotBelow(target));
      compacted = Math.max(compacted, await coordinator.compact(target, parts.partitions()));
      return { revision: now, compactedRevision: compacted };
    },
    openSnapshot: () => notYet("snapshots"),
    stats: () => ({ ...parts.stats(), revision }),
    checkpoint: (options) => parts.checkpoint(options),
    backup: (dir) => parts.backup(dir),
    settleGc: () => Promise.resolve(),
    close: () => parts.close(),
  };
}

/**
 * Runs `attempt` again while it loses to another write (E_CONFLICT), after a short random pause that
 * grows, so that writers of the same keys take turns instead of aborting, as etcd's writes never do.
 */
function conflictRetries(timers: Timers, random: () => number) {
  return async <T>(attempt: () => Promise<T>): Promise<T> => {
    const deadline = timers.now() + CONFLICT_WAIT_MS;
    // Bounded by the deadline; the count is a backstop for a clock that would not move.
    for (let run = 0; ; run++) {
      try {
        return await attempt();
      } catch (error) {
        if (!(error instanceof HomeKvError && error.code === "E_CONFLICT") || timers.now() > deadline || run > 10_000)
          throw error;
        // Random and growing: two writers that keep meeting (each locking a partition the other
        // needs) soon stop meeting, as Ethernet's backoff does.
        await delay(random() * Math.min(CONFLICT_PAUSE_MS_MAX, 2 ** run), timers);
      }
    }
  };
}

/** The keys a branch of a Txn gets, in order. */
const branchGets = (ops: readonly TxnOp[]) => ops.flatMap((op) => (isWrite(op) ? [] : [op.get]));

/** A write as a partition's mutation: a put keeps its TTL deadline (the partition's sweeper deletes the key after it). */
function mutationOf({ key, value, expiresAtMs }: WriteOp): Mutation {
  return expiresAtMs === undefined || value === null ? { key, value } : { key, value, expiresAtMs };
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
    ...(write.expiresAtMs === undefined ? {} : { expiresAtMs: write.expiresAtMs }),
  };
}

function notYet(what: string): never {
  throw new HomeKvError("E_UNIMPLEMENTED", `${what} across partitions is not available yet`);
}

import type { TxnCoordinator } from "../cluster/txn/coordinator.ts";
import { HomeKvError } from "../errors.ts";
import type { Database, DatabaseStats } from "../storage/database.ts";
import { type ApplyResult, type KeyRecord, recordBytes, type WriteOp } from "../storage/ops.ts";
import type { Watches } from "../storage/watch/watch-hub.ts";

/** Rounds of read-then-write a Del makes when other writes keep landing on its keys between the two. */
const DELETE_ATTEMPTS = 5;

export interface PartitionedDatabaseParts {
  coordinator: TxnCoordinator;
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
 * What is not built yet is refused with E_UNIMPLEMENTED naming it.
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
    txn: () => notYet("Txn"),
    compact: () => notYet("Compact"),
    openSnapshot: () => notYet("Scan"),
    stats: () => ({ ...parts.stats(), revision }),
    checkpoint: () => notYet("Checkpoint (a partition's state is its Raft log)"),
    settleGc: () => Promise.resolve(),
    close: () => parts.close(),
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

import { HomeKvError } from "../../errors.ts";
import { createStore } from "../../storage/engine.ts";
import type { MvccStore } from "../../storage/mvcc/store.ts";
import type { KeyRecord } from "../../storage/ops.ts";
import { type HostedGroupOptions, hostGroup } from "../replication/hosted-group.ts";
import type { RaftDriver } from "../replication/raft-driver.ts";
import { CommitPipeline } from "./commit-pipeline.ts";
import { type Lock, type Mutation, type TxnOutcome, TxnPartition, type TxnStatus } from "./percolator.ts";
import { storeVersions } from "./store-versions.ts";
import { applyTxnCommand, decodeTxnCommand, encodeTxnCommand, type TxnCommand } from "./txn-command-format.ts";

/** Partition p's Raft group id (the meta group is 1). */
export const partitionGroupId = (partition: number) => partition + 2;

export interface PartitionGroupOptions extends HostedGroupOptions {
  partition: number;
  /** The first of `count` consecutive timestamps (a TimestampClient's). */
  timestamps: (count: number) => Promise<number>;
  /** How long a read waits for the leader's confirmation. */
  readTimeoutMs: number;
}

/** A one-round write waiting for its timestamp: its mutations, and the timestamp it read at (none: blind). */
interface OnePhaseWrite {
  readonly startTs?: number;
  readonly mutations: readonly Mutation[];
}

/** A key's version as a read at a timestamp finds it: its value (undefined: none), and when and how often it was written. */
export interface VersionRecord {
  readonly value: Uint8Array | undefined;
  /** The commit timestamp of the version read (0: none). */
  readonly modRevision: number;
  /** The commit timestamp of the key's first version since it last did not exist (0: none). */
  readonly createRevision: number;
  /** Versions since then, this one included (0: none). */
  readonly version: number;
}

/** What a read at a timestamp finds for a key: its version then, or a lock to resolve first. */
export type PartitionRead = { readonly record: VersionRecord } | { readonly lock: Lock };

/**
 * A node's replica of one partition (docs/internals/partitions.md): a Raft group in the node's host
 * whose state machine is the partition's MVCC store with Percolator's locks (TxnPartition), every
 * entry a transaction command. On its leader, one-round writes take their timestamps through a
 * CommitPipeline, and reads at a timestamp wait for it and for a ReadIndex round.
 *
 * Not yet: log compaction and snapshots (a member far behind is caught up from the log), a GC safe
 * point (the store keeps its whole history, so no late commit is refused as compacted).
 */
export class PartitionGroup {
  readonly store: MvccStore;
  private readonly partition: TxnPartition;
  readonly driver: RaftDriver<TxnOutcome | undefined>;
  private readonly pipeline: CommitPipeline<OnePhaseWrite, TxnOutcome>;

  constructor(private readonly options: PartitionGroupOptions) {
    this.store = createStore({ kind: "memory" }, { historyRevisions: Number.POSITIVE_INFINITY });
    this.partition = new TxnPartition(storeVersions(this.store));
    ({ driver: this.driver } = hostGroup<TxnOutcome | undefined>(options, partitionGroupId(options.partition), {
      apply: (entry) =>
        entry.data === null || entry.conf ? undefined : applyTxnCommand(this.partition, decodeTxnCommand(entry.data)),
      restore: () => {
        throw new HomeKvError("E_UNAVAILABLE", "a partition group takes no snapshot yet: its log is never compacted");
      },
    }));
    this.pipeline = new CommitPipeline({
      timestamps: options.timestamps,
      propose: (ts, write) => this.propose({ type: "onePhase", ...write, commitTs: ts }),
    });
  }

  /** Proposes a transaction command (leader only); resolves with what applying it did. */
  async propose(command: TxnCommand): Promise<TxnOutcome> {
    return (await this.driver.propose(encodeTxnCommand(command)))!;
  }

  /**
   * A write of keys of this partition only, committed in one round at the next timestamp (leader
   * only); with `readAt` (the timestamp its inputs were read at), refused when a key was written since.
   */
  write(mutations: readonly Mutation[], readAt?: number): Promise<{ ts: number; result: TxnOutcome }> {
    if (!this.driver.leads) return Promise.reject(this.notLeader());
    return this.pipeline.submit(readAt === undefined ? { mutations } : { startTs: readAt, mutations });
  }

  /**
   * The keys at timestamp `ts` (leader only): once every write whose timestamp was asked for before
   * this call is applied, and a ReadIndex round confirmed this node leads with all it committed
   * applied. A key held by a transaction that may commit at or below `ts` comes back as its lock
   * (unless the reader found it committed above `ts`: `bypass`, the start timestamps of such).
   */
  async read(keys: readonly string[], ts: number, bypass?: ReadonlySet<number>): Promise<PartitionRead[]> {
    if (!this.driver.leads) throw this.notLeader();
    await this.pipeline.barrier();
    await this.driver.readBarrier(this.options.readTimeoutMs);
    // The store holds what the partition reads: the version a read at `ts` finds is its record there.
    const at = Math.min(ts, this.store.revision);
    return keys.map((key) => {
      const found = this.partition.read(key, ts, bypass);
      if ("lock" in found) return found;
      const [{ value, modRevision, createRevision, version }] = this.store.readRecords([key], at) as [KeyRecord];
      return { record: { value, modRevision, createRevision, version } };
    });
  }

  /**
   * The fate of the transaction started at `startTs` whose primary key lives here (leader only,
   * confirmed by a ReadIndex round: a reader resolving a lock acts on it).
   */
  async status(primary: string, startTs: number): Promise<TxnStatus> {
    if (!this.driver.leads) throw this.notLeader();
    await this.driver.readBarrier(this.options.readTimeoutMs);
    return this.partition.status(primary, startTs);
  }

  private notLeader(): HomeKvError {
    return new HomeKvError("E_NOT_LEADER", `this node does not lead partition ${this.options.partition}`);
  }
}

import { assert, HomeKvError } from "../../errors.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import type { ReplicaState } from "../../storage/checkpoint/checkpoint-format.ts";
import type { LoadedReplicatedCheckpoint, RestoredCheckpoint } from "../../storage/checkpoint/checkpoint-reader.ts";
import { type CheckpointInfo, type CheckpointOptions, GC_SLICE_KEYS_DEFAULT } from "../../storage/database.ts";
import { createGcScheduler } from "../../storage/mvcc/gc.ts";
import { compareKeys } from "../../storage/mvcc/key-order.ts";
import type { ReplaceableStore } from "../../storage/mvcc/replaceable-store.ts";
import type { HistoryChange } from "../../storage/mvcc/store.ts";
import type { Command, KeyRecord } from "../../storage/ops.ts";
import { createReplaceableObservedStore } from "../../storage/replaceable-observed-store.ts";
import type { RememberedWrite } from "../../storage/request-ids.ts";
import type { DatabaseExpiry, ExpirySettings } from "../../storage/ttl/database-expiry.ts";
import type { Raft } from "../raft/raft.ts";
import type { ConfState, NodeId } from "../raft/types.ts";
import { type CheckpointStreams, checkpointStreams } from "../replication/checkpoint-streams.ts";
import { type HostedGroupOptions, hostGroup } from "../replication/hosted-group.ts";
import {
  catchUpForCheckpoint,
  loadMemberCheckpoint,
  MemberCheckpoints,
  positionIn,
  withCheckpoints,
} from "../replication/member-checkpoints.ts";
import type { OneAtATime } from "../replication/one-at-a-time.ts";
import type { RaftDriver } from "../replication/raft-driver.ts";
import type { SnapshotStreamLimits } from "../replication/snapshot-sender.ts";
import type { StreamSlots } from "../replication/stream-slots.ts";
import { CommitPipeline } from "./commit-pipeline.ts";
import {
  type ExpiringKey,
  type Lock,
  type Mutation,
  type TxnOutcome,
  TxnPartition,
  type TxnStatus,
} from "./percolator.ts";
import { RecentChanges } from "./recent-changes.ts";
import { storeVersions } from "./store-versions.ts";
import { applyTxnCommand, decodeTxnCommand, encodeTxnCommand, type TxnCommand } from "./txn-command-format.ts";
import { decodeTxnState, encodeTxnState } from "./txn-state-format.ts";

/** Partition p's Raft group id (the meta group is 1). */
export const partitionGroupId = (partition: number) => partition + 2;

export interface PartitionGroupOptions extends HostedGroupOptions {
  partition: number;
  /** The first of `count` consecutive timestamps (a TimestampClient's). */
  timestamps: (count: number) => Promise<number>;
  /** How long a read waits for the leader's confirmation. */
  readTimeoutMs: number;
  checkpoints: PartitionCheckpointOptions;
  /**
   * The request ids this partition remembers (those whose home it is), oldest forgotten first;
   * every replica of the partition must be given the same (default REQUEST_IDS_REMEMBERED).
   */
  requestIdsRemembered?: number;
  /** The TTL sweeper's clock (wall-clock Unix ms) and timers; defaults otherwise (a simulation gives its own). */
  expiry?: ExpirySettings;
}

/** Where and when a replica checkpoints its partition (and compacts its log), and how its snapshots travel. */
export interface PartitionCheckpointOptions {
  fs: FileSystem;
  /** This replica's own directory: its checkpoints, and the leader's snapshot as it is received. */
  dir: string;
  /** A checkpoint starts once this many bytes of commands were applied since the last, */
  logBytes: number;
  /** or this many entries (the log is held in memory back to its snapshot). */
  logEntries: number;
  /** Entries kept in the log behind the checkpoint it is compacted to, for a replica a little behind. */
  tailEntries: number;
  /** Queues a payload to a member (the snapshot stream; the peer transport, by Raft id). */
  send: (to: NodeId, payload: Uint8Array) => void;
  streamLimits?: Partial<SnapshotStreamLimits>;
  /** Where the snapshot streams of the node's replicas to one peer take turns. */
  streamSlots?: StreamSlots;
  log: (line: string) => void;
  /** Where the node's replicas take turns writing their checkpoints (MemberCheckpointsOptions.turns). */
  turns?: OneAtATime;
}

/**
 * Writes a partition remembers key by key for its watchers' polls: enough for about a thousand
 * changes between two polls of a range (a Raft tick apart); a poll from further back walks it.
 */
const RECENT_CHANGES_KEPT = 1_024;

/** Keys a checkpoint copies per event-loop turn. */
const CHECKPOINT_SLICE_KEYS = 4_096;

/**
 * What waits for a timestamp of the leader's: a one-round write (its mutations, and the timestamp it
 * read at; none: blind), or the deletion of keys whose TTL passed.
 */
type Stamped =
  | { readonly startTs?: number; readonly mutations: readonly Mutation[] }
  | { readonly expire: readonly ExpiringKey[] };

/** A key's version as a read at a timestamp finds it: its value (undefined: none), and when and how often it was written. */
export interface VersionRecord {
  readonly value: Uint8Array | undefined;
  /** The commit timestamp of the version read (0: none). */
  readonly modRevision: number;
  /** The commit timestamp of the key's first version since it last did not exist (0: none). */
  readonly createRevision: number;
  /** Versions since then, this one included (0: none). */
  readonly version: number;
  /** The version's TTL deadline, Unix ms; absent: none. */
  readonly expiresAtMs?: number;
}

/** What a read at a timestamp finds for a key: its version then, or a lock to resolve first. */
export type PartitionRead = { readonly record: VersionRecord } | { readonly lock: Lock };

/** A partition's changes after a revision, up to `through`, and the locks that hold `through` back. */
export interface PartitionChanges {
  readonly changes: readonly HistoryChange[];
  readonly through: number;
  readonly locks: readonly { readonly key: string; readonly lock: Lock }[];
}

/** A range of keys a scan reads, in key order (or reverse), continuing after `after`. */
export interface ScanRange {
  readonly start?: string;
  readonly end?: string;
  readonly after?: string;
  readonly reverse?: boolean;
}

/**
 * A page of a partition's scan at a timestamp: its live keys in order, whether more may follow
 * (`next`: the key to continue after), and the locks a reader must resolve first among the keys the
 * page covers (up to `next`, or to the range's end).
 */
export interface PartitionScan {
  readonly records: readonly KeyRecord[];
  readonly next?: string;
  readonly locks: readonly { readonly key: string; readonly lock: Lock }[];
}

/**
 * A node's replica of one partition (docs/internals/partitions.md): a Raft group in the node's host
 * whose state machine is the partition's MVCC store with Percolator's locks (TxnPartition), every
 * entry a transaction command. On its leader, one-round writes take their timestamps through a
 * CommitPipeline, and reads at a timestamp wait for it and for a ReadIndex round.
 *
 * Its checkpoints are a replicated member's (member-checkpoints.ts), with the partition's locks and
 * fates beside the store: one is written in the background every so many entries or bytes applied,
 * the log is compacted to it (less a tail), a restart begins from it, and a replica too far behind
 * for the log (one moved here) is streamed the leader's.
 */
export class PartitionGroup {
  readonly store: ReplaceableStore;
  private readonly partition: TxnPartition;
  readonly driver: RaftDriver<TxnOutcome | undefined>;
  private readonly pipeline: CommitPipeline<Stamped, TxnOutcome>;
  private readonly raft: Raft;
  private readonly checkpoints: MemberCheckpoints;
  private readonly streams: CheckpointStreams;

  /** Deletes keys whose TTL passed, through the log, while this replica leads (as a server's sweeper does). */
  private readonly expiry: DatabaseExpiry;
  /** The keys written lately: a poll of a quiet range needs no walk of its keys (`changes`). */
  private readonly recent: RecentChanges;

  /** This replica of `options.partition`, its store loaded from its newest checkpoint (if any), running. */
  static async open(options: PartitionGroupOptions): Promise<PartitionGroup> {
    const { fs, dir, log } = options.checkpoints;
    const observed = createReplaceableObservedStore(
      { historyRevisions: Number.POSITIVE_INFINITY, expiry: options.expiry },
      log,
    );
    // A log with nothing in it is a replica new here (or placed here again after it was retired):
    // a checkpoint left in its directory is an earlier replica's, and would pass entries over.
    if (options.log.lastIndex() === 0) await removeCheckpoints(fs, dir);
    const loaded = await loadMemberCheckpoint(fs, dir, options.log.snapshot().index, observed.store);
    return new PartitionGroup(options, observed, loaded);
  }

  private constructor(
    private readonly options: PartitionGroupOptions,
    observed: ReturnType<typeof createReplaceableObservedStore>,
    loaded: RestoredCheckpoint<LoadedReplicatedCheckpoint> | undefined,
  ) {
    this.store = observed.store;
    this.expiry = observed.expiry;
    this.recent = new RecentChanges(RECENT_CHANGES_KEPT, this.store.revision);
    const versions = storeVersions(this.store);
    this.partition = new TxnPartition(
      {
        ...versions,
        write: (commitTs, mutations) => {
          versions.write(commitTs, mutations);
          this.recent.record(
            mutations.map((m) => m.key),
            commitTs,
            this.store.revision,
          );
        },
      },
      options.requestIdsRemembered,
    );
    // What the state machine keeps beside the store, in every checkpoint: the locks and fates, and
    // the request ids whose home this partition is.
    const beside = {
      capture: (): ReplicaState => ({
        members: [],
        requestIds: this.partition.requestIds.entries(),
        transactions: encodeTxnState(this.partition.state()),
      }),
      restore: (state: ReplicaState) => {
        if (state.transactions === undefined)
          throw new HomeKvError("E_CORRUPT", `a checkpoint of partition ${options.partition} without its transactions`);
        this.partition.restore(decodeTxnState(state.transactions));
        this.partition.requestIds.replaceWith(state.requestIds);
        // The store is the checkpoint's now: what was written before it is not known one by one.
        this.recent.reset(this.store.revision);
      },
    };
    if (loaded) beside.restore(loaded.replica);
    const settings = options.checkpoints;
    const checkpoints = new MemberCheckpoints(
      {
        fs: settings.fs,
        dir: settings.dir,
        observed,
        raftLog: options.log,
        positionAt: (index) => positionIn(this.raft)(index),
        replica: beside,
        appliedIndex: loaded?.index ?? options.log.snapshot().index,
        checkpointLogBytes: settings.logBytes,
        checkpointLogEntries: settings.logEntries,
        tailEntries: settings.tailEntries,
        sliceKeysMax: CHECKPOINT_SLICE_KEYS,
        log: settings.log,
        turns: settings.turns,
      },
      loaded,
    );
    this.checkpoints = checkpoints;
    const group = partitionGroupId(options.partition);
    this.streams = checkpointStreams({
      group,
      fs: settings.fs,
      dir: settings.dir,
      send: settings.send,
      driver: () => this.driver,
      limits: settings.streamLimits,
      slots: settings.streamSlots,
      log: settings.log,
      timers: options.timers,
    });
    // Versions compaction or newer writes left unreadable go in slices between turns, as a server's do.
    const gc = createGcScheduler(this.store, { sliceKeysMax: GC_SLICE_KEYS_DEFAULT, defer: options.timers?.soon });
    ({ raft: this.raft, driver: this.driver } = hostGroup<TxnOutcome | undefined>(
      options,
      group,
      withCheckpoints<TxnOutcome | undefined>(
        {
          apply: (entry) => {
            if (entry.data === null || entry.conf) return undefined;
            const outcome = applyTxnCommand(this.partition, decodeTxnCommand(entry.data));
            gc.kick();
            return outcome;
          },
          // The store is replaced by the checkpoint's (withCheckpoints); nothing else is held here.
          restore: () => {},
        },
        checkpoints,
      ),
      this.streams,
    ));
    this.pipeline = new CommitPipeline({
      timestamps: options.timestamps,
      propose: (ts, item) =>
        this.propose(
          "expire" in item
            ? { type: "expire", commitTs: ts, keys: item.expire }
            : { type: "onePhase", ...item, commitTs: ts },
        ),
      leaderTerm: () => (this.driver.leads ? this.raft.term : undefined),
    });
    this.expiry.start((command) => this.expire(command), this.store);
    if (loaded) settings.log(`partition ${options.partition}: loaded the checkpoint at index ${loaded.index}`);
  }

  /**
   * Stops the replica's work of its own (it is retired, or the node stops): expiring keys, its
   * snapshot streams; resolves once a checkpoint under way is written.
   */
  async stop(): Promise<void> {
    this.expiry.stop();
    this.streams.close();
    await this.checkpoints.close();
  }

  /**
   * Writes a checkpoint of the partition (the Checkpoint call), once this replica has applied all its
   * group committed before the call (a ReadIndex round, as a linearizable read): a follower's would
   * otherwise miss writes already acknowledged. Serializable: of what it has applied, at once. The
   * last one when nothing was applied since.
   */
  async checkpoint(options?: CheckpointOptions): Promise<CheckpointInfo> {
    await catchUpForCheckpoint(options, () => this.driver.readBarrier(this.options.readTimeoutMs));
    return this.checkpoints.checkpoint();
  }

  /**
   * Deletes keys whose TTL passed (leader only), each unless written since the version whose TTL it
   * was (an `expire` command: checked key by key where it applies, as a server's store does), at a
   * new timestamp. A key a transaction holds is not deleted now: its commit may land below the
   * delete's timestamp. Throws then, or when the command was refused, for the sweeper to try again
   * (the keys deleted meanwhile it leaves out).
   */
  private async expire(command: Command): Promise<void> {
    assert(command.kind === "expire", "the TTL sweeper proposes expire commands only");
    if (!this.driver.leads) throw this.notLeader();
    const free = command.keys.filter(({ key }) => this.partition.lockOf(key) === undefined);
    if (free.length > 0) {
      const { result } = await this.pipeline.submit({ expire: free });
      if (!result.ok) throw new HomeKvError("E_CONFLICT", `keys due to expire were refused (${result.refusal.kind})`);
    }
    if (free.length < command.keys.length)
      throw new HomeKvError("E_CONFLICT", "keys due to expire are held by transactions in flight");
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
    await this.readyToRead();
    // The store holds what the partition reads: the version a read at `ts` finds is its record there.
    const at = Math.min(ts, this.store.revision);
    return keys.map((key) => {
      const found = this.partition.read(key, ts, bypass);
      if ("lock" in found) return found;
      const [{ value, modRevision, createRevision, version, expiresAtMs }] = this.store.readRecords([key], at) as [
        KeyRecord,
      ];
      const ttl = expiresAtMs === undefined ? {} : { expiresAtMs };
      return { record: { value, modRevision, createRevision, version, ...ttl } };
    });
  }

  /**
   * Up to `limit` live keys of `range` at timestamp `ts`, about `bytesMax` of keys and values at
   * most (one key at least), (leader only, after the same waits as
   * `read`), with the locks that stand in the way among the keys the page covers: a key locked by a
   * transaction that may commit at or below `ts` is resolved by the reader first, whether or not it
   * has a version yet.
   */
  async scan(
    range: ScanRange,
    ts: number,
    limit: number,
    bytesMax: number,
    bypass?: ReadonlySet<number>,
  ): Promise<PartitionScan> {
    await this.readyToRead();
    const page = this.store.scan({ ...range, limit, bytesMax, revision: Math.min(ts, this.store.revision) });
    const covered = (key: string) =>
      inScanRange(range, key) &&
      (page.next === undefined ||
        (range.reverse ? compareKeys(key, page.next) >= 0 : compareKeys(key, page.next) <= 0));
    return { ...page, locks: this.partition.locksAt(ts, covered, bypass) };
  }

  /**
   * The changes of keys in [start, end) after revision `after`, in revision order, up to `through`:
   * as far as no commit can still appear (a resolved timestamp), at most `ts` (a timestamp the
   * caller took before it asked: every write asked for before then is applied first, as for a
   * read) and short of every open lock's start (its commit will be above it); less when `limit`,
   * or `bytesMax` of keys and values (whole revisions), cuts the page. Previous values only
   * `withPrevious`. `locks` are the keys whose locks hold `through` back, for the caller to resolve.
   */
  async changes(
    range: { start?: string; end?: string },
    after: number,
    ts: number,
    size: { limit: number; bytesMax: number; withPrevious: boolean },
  ): Promise<PartitionChanges> {
    await this.readyToRead();
    const locks = this.partition.locksAt(ts, (key) => inScanRange(range, key));
    const resolved = Math.min(ts, ...locks.map(({ lock }) => lock.startTs));
    if (resolved <= after) return { changes: [], through: Math.max(after, resolved), locks };
    // Nothing in the range written since `after` (the usual poll of a quiet range): no walk of it.
    if (this.recent.changedAfter(after, (key) => inScanRange(range, key)) === false)
      return { changes: [], through: resolved, locks };
    const page = this.store.changes({ ...range, after, limit: size.limit });
    // A page that reached the store's revision has every change up to the resolved timestamp: the
    // store holds every commit at or below it (the barriers above), and nothing is between.
    let through = page.through >= this.store.revision ? resolved : Math.min(page.through, resolved);
    const changes: HistoryChange[] = [];
    let bytes = 0;
    for (const change of page.changes) {
      if (change.revision > through) break;
      bytes += change.key.length + (change.value?.byteLength ?? 0);
      if (size.withPrevious) bytes += change.previous?.byteLength ?? 0;
      // Whole revisions, the first one whatever its size: past bytesMax the page ends before the next.
      if (bytes > size.bytesMax && changes.length > 0 && change.revision !== changes.at(-1)!.revision) {
        through = change.revision - 1;
        break;
      }
      changes.push(size.withPrevious ? change : { ...change, previous: undefined });
    }
    return { changes, through, locks };
  }

  /**
   * Compacts the partition's history below `revision`, short of its open locks (leader only; see
   * TxnPartition.compact); resolves with its compacted revision once applied here.
   */
  async compact(revision: number): Promise<number> {
    if (!this.driver.leads) throw this.notLeader();
    // After the one-round writes whose timestamps were asked for before (they may be below
    // `revision`, and would be refused past it); those asked for later are above it.
    await this.pipeline.barrier();
    await this.propose({ type: "compact", revision });
    return this.store.compactedRevision;
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

  /**
   * What the write of request id `id` did, when this is the id's home and remembers it (leader only,
   * confirmed by a ReadIndex round, as `status`): a retry held off by others' locks is answered with it.
   */
  async requestOf(id: string): Promise<RememberedWrite | undefined> {
    if (!this.driver.leads) throw this.notLeader();
    await this.driver.readBarrier(this.options.readTimeoutMs);
    return this.partition.requestIds.get(id);
  }

  /**
   * The group's committed members (leader only, confirmed by a ReadIndex round): whether a replica
   * placed elsewhere may go. Not the members this leader goes by: a removal appended there but not
   * committed may yet be lost with the leader, and the group would count a replica whose log is gone.
   */
  async members(): Promise<ConfState> {
    if (!this.driver.leads) throw this.notLeader();
    const index = await this.driver.readBarrier(this.options.readTimeoutMs);
    return this.raft.confState(index);
  }

  /**
   * Waits until a read at a timestamp taken before this call sees every write at or below it
   * (leader only): every one-round write whose timestamp was asked for before is applied, and a
   * ReadIndex round confirmed this node leads with all it committed applied.
   */
  private async readyToRead(): Promise<void> {
    if (!this.driver.leads) throw this.notLeader();
    await this.pipeline.barrier();
    await this.driver.readBarrier(this.options.readTimeoutMs);
  }

  private notLeader(): HomeKvError {
    return new HomeKvError("E_NOT_LEADER", `this node does not lead partition ${this.options.partition}`);
  }
}

/** Whether `key` is in `range` and past its `after` (in the scan's direction), in the store's key order. */
export function inScanRange(range: ScanRange, key: string): boolean {
  if (range.start !== undefined && compareKeys(key, range.start) < 0) return false;
  if (range.end !== undefined && compareKeys(key, range.end) >= 0) return false;
  if (range.after === undefined) return true;
  return range.reverse ? compareKeys(key, range.after) < 0 : compareKeys(key, range.after) > 0;
}

/** Removes the checkpoints of a replica that is no more (its directory stays, empty). */
export async function removeCheckpoints(fs: FileSystem, dir: string): Promise<void> {
  await fs.mkdirp(dir);
  for (const name of await fs.list(dir)) await fs.remove(`${dir}/${name}`);
}

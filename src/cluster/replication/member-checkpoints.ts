import { assert, describeError, HomeKvError } from "../../errors.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import { writeBackupCheckpoint } from "../../storage/backup/backup-checkpoint.ts";
import type { BackupContents } from "../../storage/backup/backup-contents.ts";
import { REPLICATED_CHECKPOINT_FILES, type ReplicaState } from "../../storage/checkpoint/checkpoint-format.ts";
import {
  type LoadedReplicatedCheckpoint,
  listCheckpoints,
  loadReplicatedCheckpoint,
  type RestoredCheckpoint,
} from "../../storage/checkpoint/checkpoint-reader.ts";
import { writeCheckpoint } from "../../storage/checkpoint/checkpoint-writer.ts";
import type { CheckpointInfo, CheckpointOptions } from "../../storage/database.ts";
import type { WriteView } from "../../storage/mvcc/store.ts";
import type { ReplaceableObservedStore } from "../../storage/replaceable-observed-store.ts";
import type { Raft } from "../raft/raft.ts";
import type { ConfState, Entry, Snapshot } from "../raft/types.ts";
import { type OneAtATime, oneAtATime } from "./one-at-a-time.ts";
import { ReadTimeoutError, type ReplicatedStateMachine } from "./raft-driver.ts";

/**
 * The data of a member's Raft snapshot, in its .raftsnap file and in snapshot messages: one byte,
 * 1, meaning "the replicated checkpoint at the snapshot's index" (`<index>.rckpt` in the member's
 * checkpoint directory). The checkpoint itself travels over the snapshot stream.
 */
export const CHECKPOINT_SNAPSHOT_DATA = Uint8Array.of(1);

/**
 * Where entry `index` stands in `raft`'s log — its term and the members as of it — for a checkpoint
 * of the state applied through it. Refused (E_UNAVAILABLE) while a leader's snapshot waits to be
 * installed: the log restarts at that snapshot, and the state being checkpointed is about to be
 * replaced by it anyway.
 */
export function positionIn(raft: Raft): (index: number) => { term: number; conf: ConfState } {
  return (index) => {
    if (raft.installingSnapshot)
      throw new HomeKvError("E_UNAVAILABLE", "a leader's snapshot is being installed: no checkpoint until it is");
    return { term: raft.termAt(index), conf: raft.confState(index) };
  };
}

/** What a Checkpoint call that could not catch up says of the way round, once. */
export const SERIALIZABLE_CHECKPOINT_HINT =
  "homekv checkpoint --serializable writes what this member has applied, without a quorum, possibly missing the latest acknowledged writes";

/** A Checkpoint call's ReadIndex round that did not finish in time; `summary` says so, with why. */
export class CheckpointCatchUpError extends HomeKvError {
  readonly summary: string;
  constructor(reason: string) {
    const summary = `could not catch up with its group's commit (${reason})`;
    super("E_UNAVAILABLE", `no checkpoint: this member ${summary}; ${SERIALIZABLE_CHECKPOINT_HINT}`);
    this.summary = summary;
  }
}

/**
 * Before the Checkpoint call writes a member's checkpoint: a ReadIndex round (`readBarrier`), so
 * that a follower's holds every write acknowledged before the call, as a linearizable read does;
 * none when the call is serializable. A round that times out becomes a CheckpointCatchUpError.
 * (The background checkpoints never wait: they must not need a leader.)
 */
export async function catchUpForCheckpoint(
  options: CheckpointOptions | undefined,
  readBarrier: () => Promise<unknown>,
): Promise<void> {
  if (!options?.serializable) await catchUp(readBarrier, (reason) => new CheckpointCatchUpError(reason));
}

/**
 * Before a Backup call copies a member's store: a ReadIndex round, as for the Checkpoint call, with
 * no serializable form: a backup is taken to be restored as the data, so it must hold every write
 * acknowledged before the call. A member cut off from its quorum cannot vouch for that.
 */
export async function catchUpForBackup(readBarrier: () => Promise<unknown>): Promise<void> {
  await catchUp(
    readBarrier,
    (reason) =>
      new HomeKvError(
        "E_UNAVAILABLE",
        `no backup: this member could not catch up with its group's commit (${reason}); back up a member that reaches a leader, or, with the quorum lost, stop a member and copy its data directory`,
      ),
  );
}

async function catchUp(readBarrier: () => Promise<unknown>, timedOut: (reason: string) => Error): Promise<void> {
  try {
    await readBarrier();
  } catch (error) {
    throw error instanceof ReadTimeoutError ? timedOut(error.message) : error;
  }
}

/** What the store's state machine asks of the checkpoints (raft-commit-log.ts). */
export interface StoreCheckpoints {
  /** Whether the store already holds entry `index` (the checkpoint it started from covers it). */
  holds(index: number): boolean;
  /** The store has applied entry `entry` (each entry after the ones it holds, in order). */
  applied(entry: Entry): void;
  /** Builds a new store from the checkpoint a leader's snapshot stands for and swaps it in. */
  install(snapshot: Snapshot): Promise<void>;
}

/**
 * `machine` over a store loaded from a checkpoint: the entries that checkpoint holds are passed
 * over (the log may begin before it), every other is told to the checkpoints once applied, and a
 * leader's snapshot is installed from its checkpoint after `machine` has let go of what it held.
 */
export function withCheckpoints<R>(
  machine: ReplicatedStateMachine<R>,
  checkpoints: StoreCheckpoints,
): ReplicatedStateMachine<R | undefined> {
  return {
    apply(entry) {
      if (checkpoints.holds(entry.index)) return undefined;
      const result = machine.apply(entry);
      checkpoints.applied(entry);
      return result;
    },
    async restore(snapshot) {
      await machine.restore(snapshot);
      await checkpoints.install(snapshot);
    },
  };
}

export interface MemberCheckpointsOptions {
  fs: FileSystem;
  /** The member's checkpoint directory. */
  dir: string;
  observed: ReplaceableObservedStore;
  /** The Raft log: compacted up to a checkpoint once the log runs `tailEntries` past it. */
  raftLog: {
    snapshot(): Snapshot;
    compact(index: number, data: Uint8Array, conf: ConfState): Promise<void>;
  };
  /** The term of entry `index` and the members as of it (the Raft core knows both). */
  positionAt(index: number): { term: number; conf: ConfState };
  /** What the state machine keeps beside the store, taken with it and put back with it. */
  replica: { capture(): ReplicaState; restore(state: ReplicaState): void };
  /** The Raft index the store stands at now (0, or the checkpoint it was loaded from). */
  appliedIndex: number;
  /** A checkpoint starts in the background once this many bytes of commands were applied since the last, */
  checkpointLogBytes: number;
  /**
   * or this many entries: the Raft log is held in memory back to its snapshot, so its length is what
   * bounds the member's memory between checkpoints (etcd's --snapshot-count).
   */
  checkpointLogEntries: number;
  /** Entries kept in the log behind the checkpoint it is compacted to, for followers a little behind. */
  tailEntries: number;
  sliceKeysMax: number;
  log: (line: string) => void;
  /**
   * Where the writes of many members' checkpoints take turns (a partitioned node's replicas: at
   * once, each would leave its unsynced bytes for the next log fsync, and all reach their
   * thresholds together under an even load). Default: no one else's.
   */
  turns?: OneAtATime;
}

/**
 * A replicated member's checkpoints: each is the store at a Raft index (etcd's consistent index),
 * written like a single server's (the store pinned, copied a slice at a time while it serves) with
 * the index, its term and the members then; the newest one not within `tailEntries` of the applied
 * index becomes the Raft snapshot, and the log before it is dropped. A leader's snapshot is such a
 * checkpoint, received whole before it is installed here.
 *
 * Checkpoints and installs run one at a time (a checkpoint must read one store throughout, and an
 * install removes the other files). Only files older than the Raft snapshot's are removed: the log
 * needs that one (to send it) and the newer ones start after it.
 */
export class MemberCheckpoints implements StoreCheckpoints {
  private appliedIndex: number;
  private appliedBytes = 0;
  /** The bytes applied when the last checkpoint was begun (written or not): the next is due from there. */
  private bytesAtLast = 0;
  private indexAtLast: number;
  private last: CheckpointInfo | undefined;
  /** The bytes applied when `last` was taken. */
  private bytesInLast = 0;
  /** The newest checkpoint written here and not yet made the Raft snapshot. */
  private pendingCompaction: { index: number; conf: ConfState } | undefined;
  /** Checkpoints and installs, one at a time. */
  private readonly exclusive = oneAtATime();
  private running: Promise<CheckpointInfo> | undefined;

  constructor(
    private readonly options: MemberCheckpointsOptions,
    loaded: RestoredCheckpoint<LoadedReplicatedCheckpoint> | undefined,
  ) {
    this.appliedIndex = options.appliedIndex;
    this.indexAtLast = options.appliedIndex;
    if (loaded) this.last = loadedInfo(loaded);
  }

  holds(index: number): boolean {
    return index <= this.appliedIndex;
  }

  applied(entry: Entry): void {
    assert(
      entry.index === this.appliedIndex + 1,
      () => `the store applied entry ${entry.index} after ${this.appliedIndex}`,
    );
    this.appliedIndex = entry.index;
    this.appliedBytes += entry.data?.byteLength ?? 0;
    const due =
      this.appliedBytes - this.bytesAtLast >= this.options.checkpointLogBytes ||
      this.appliedIndex - this.indexAtLast >= this.options.checkpointLogEntries;
    if (this.running === undefined && due) {
      this.checkpoint().catch((error) => this.options.log(`background checkpoint failed: ${describeError(error)}`));
    }
    this.compactLog();
  }

  /** The store as it is now, as a checkpoint; the last one when nothing was applied since. */
  checkpoint(): Promise<CheckpointInfo> {
    const { turns } = this.options;
    const run = this.exclusive(() => (turns ? turns(() => this.write()) : this.write()));
    this.running = run;
    const clear = () => {
      if (this.running === run) this.running = undefined;
    };
    run.then(clear, clear);
    return run;
  }

  lastCheckpoint(): CheckpointInfo | undefined {
    return this.last;
  }

  /**
   * Writes the store as it is now into `into`, a new data directory, as a single server's
   * checkpoint (`checkpoints/<revision>.ckpt`, no Raft position): a backup, which a server started
   * on it loads as a standalone store, and `homekv restore` founds a new cluster from. After a
   * checkpoint or install under way: an install swaps the store out.
   */
  backup(into: string): Promise<BackupContents> {
    return this.exclusive(() =>
      writeBackupCheckpoint({
        fs: this.options.fs,
        into,
        store: this.options.observed.store.current,
        sliceKeysMax: this.options.sliceKeysMax,
      }),
    );
  }

  async install(snapshot: Snapshot): Promise<void> {
    assert(
      snapshot.data.byteLength === 1 && snapshot.data[0] === CHECKPOINT_SNAPSHOT_DATA[0],
      () => `a snapshot at ${snapshot.index} that does not stand for a checkpoint`,
    );
    await this.exclusive(async () => {
      const { fs, dir } = this.options;
      const name = REPLICATED_CHECKPOINT_FILES.fileName(snapshot.index);
      const loaded = await loadReplicatedCheckpoint(fs, `${dir}/${name}`, (checkpoint) => {
        assert(
          checkpoint.raft.term === snapshot.term,
          () => `checkpoint ${name} is of term ${checkpoint.raft.term}, the snapshot of ${snapshot.term}`,
        );
        this.options.observed.replaceWith(checkpoint.revision, checkpoint.compactedRevision, checkpoint.chains);
      });
      this.options.replica.restore(loaded.replica);
      this.appliedIndex = snapshot.index;
      this.bytesAtLast = this.appliedBytes;
      this.bytesInLast = this.appliedBytes;
      this.indexAtLast = this.appliedIndex;
      this.pendingCompaction = undefined;
      this.last = loadedInfo(loaded);
      this.options.log(
        `installed the leader's snapshot at index ${snapshot.index}: revision ${loaded.revision}, ${loaded.keys} keys`,
      );
      // The log is that snapshot now: no other checkpoint is needed.
      await this.removeCheckpoints((index) => index !== snapshot.index);
    });
  }

  /** Waits for the checkpoint or install under way. */
  async close(): Promise<void> {
    await this.exclusive(async () => {});
  }

  private async write(): Promise<CheckpointInfo> {
    const { observed, fs, dir } = this.options;
    const store = observed.store.current; // pinned: an install waits for this checkpoint anyway
    // Nothing applied since the last one written: it stands. (Not "the same revision": a partition's
    // locks and fates change with entries that write no version. Nor since the last one begun: it
    // may have failed.)
    if (this.last !== undefined && this.appliedBytes === this.bytesInLast) return this.last;
    const begun = performance.now();
    const bytes = this.appliedBytes;
    this.bytesAtLast = bytes;
    this.indexAtLast = this.appliedIndex;
    let conf: ConfState | undefined;
    const written = await writeCheckpoint({
      fs,
      dir,
      store,
      sliceKeysMax: this.options.sliceKeysMax,
      raftPosition: () => {
        const index = this.appliedIndex;
        const position = this.options.positionAt(index);
        conf = position.conf;
        return {
          index,
          revision: store.revision,
          term: position.term,
          ...position.conf,
          replica: this.options.replica.capture(),
        };
      },
    });
    this.pendingCompaction = { index: written.index!, conf: conf! };
    this.bytesInLast = bytes;
    this.last = {
      revision: written.revision,
      entries: written.entries,
      bytes: written.bytes,
      atMs: Date.now(),
      durationMs: performance.now() - begun,
    };
    this.options.log(
      `checkpoint at index ${written.index} (revision ${written.revision}): ${written.entries} keys, ${written.bytes} bytes in ${this.last.durationMs.toFixed(0)} ms`,
    );
    return this.last;
  }

  /**
   * Makes the newest checkpoint the Raft snapshot once the applied index is `tailEntries` past it.
   * Only called as an entry is applied: the driver has then no snapshot queued in the log, so the
   * log takes the compaction after what it holds and before any snapshot it is given later.
   */
  private compactLog(): void {
    const pending = this.pendingCompaction;
    if (pending === undefined || this.appliedIndex - pending.index < this.options.tailEntries) return;
    this.pendingCompaction = undefined;
    if (pending.index <= this.options.raftLog.snapshot().index) return; // a leader's snapshot overtook it
    this.options.raftLog
      .compact(pending.index, CHECKPOINT_SNAPSHOT_DATA, pending.conf)
      .then(() => this.exclusive(() => this.removeCheckpoints((index) => index < pending.index)))
      .catch((error) =>
        this.options.log(`compacting the Raft log to index ${pending.index} failed: ${describeError(error)}`),
      );
  }

  private async removeCheckpoints(unwanted: (index: number) => boolean): Promise<void> {
    const { fs, dir } = this.options;
    for (const { name, revision: index } of await listCheckpoints(fs, dir, REPLICATED_CHECKPOINT_FILES))
      if (unwanted(index)) await fs.remove(`${dir}/${name}`);
  }
}

/**
 * Loads a member's newest checkpoint into its (empty) store, at start. Nothing to load is fine for
 * a log that was never compacted; otherwise the checkpoint the log's snapshot stands for must be
 * there, and the newest may not be older than it. Unfinished files (`.tmp`) are removed first.
 */
export async function loadMemberCheckpoint(
  fs: FileSystem,
  dir: string,
  snapshotIndex: number,
  store: WriteView,
): Promise<RestoredCheckpoint<LoadedReplicatedCheckpoint> | undefined> {
  await fs.mkdirp(dir);
  for (const name of await fs.list(dir)) if (name.endsWith(".tmp")) await fs.remove(`${dir}/${name}`);
  const checkpoints = await listCheckpoints(fs, dir, REPLICATED_CHECKPOINT_FILES);
  if (snapshotIndex > 0 && !checkpoints.some((c) => c.revision === snapshotIndex)) {
    throw new HomeKvError(
      "E_CORRUPT",
      `the Raft log starts after index ${snapshotIndex}, but ${dir}/${REPLICATED_CHECKPOINT_FILES.fileName(snapshotIndex)}, the checkpoint it stands on, is missing`,
    );
  }
  const [newest] = checkpoints;
  if (newest === undefined) return undefined;
  return loadReplicatedCheckpoint(fs, `${dir}/${newest.name}`, (checkpoint) =>
    store.restore(checkpoint.revision, checkpoint.compactedRevision, checkpoint.chains),
  );
}

/** A checkpoint loaded rather than written here, as the last one (metrics). */
function loadedInfo(loaded: RestoredCheckpoint<LoadedReplicatedCheckpoint>): CheckpointInfo {
  return { revision: loaded.revision, entries: loaded.entries, bytes: loaded.bytes, atMs: Date.now(), durationMs: 0 };
}

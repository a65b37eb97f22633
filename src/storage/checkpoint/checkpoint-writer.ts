import { assert } from "../../errors.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import type { CheckpointSource } from "../mvcc/store.ts";
import {
  CHECKPOINT_FILES,
  encodeChainsFrame,
  encodeEndFrame,
  encodeMetaFrame,
  encodeRaftFrame,
  encodeReplicaFrame,
  encodeTransactionsFrame,
  type RaftPosition,
  REPLICATED_CHECKPOINT_FILES,
  type ReplicaState,
} from "./checkpoint-format.ts";

/** Bytes a checkpoint writes between syncs (also one received from a leader: snapshot-receiver.ts). */
export const CHECKPOINT_SYNC_EVERY_BYTES = 4 * 1024 * 1024;

export interface WrittenCheckpoint {
  revision: number;
  /** A replicated checkpoint's Raft index (the number in its name). */
  index?: number;
  name: string;
  /** Live keys in it (keys kept only for their history are not counted). */
  entries: number;
  bytes: number;
}

/**
 * Writes the live state at the current revision to a new checkpoint file, without stopping reads
 * or writes: a snapshot pins the revision, and the keys are copied `sliceKeysMax` at a time, each
 * slice in its own event-loop turn while writes go on (as they stood when pinned: a late commit
 * landing meanwhile is left out, Snapshot.chains). Temporary name, fsync, rename, fsync the
 * directory: the file is either complete under its final name or not there at all.
 */
export async function writeCheckpoint(options: {
  fs: FileSystem;
  dir: string;
  store: CheckpointSource;
  sliceKeysMax: number;
  /** Runs after the file is complete and before it takes its final name. */
  beforeRename?: () => Promise<void>;
  /**
   * Makes it a replicated checkpoint: called once, in the turn the revision is pinned, for the Raft
   * index the store stands at, the position there and the state kept beside the store (so all
   * match).
   */
  raftPosition?: () => RaftPosition & { index: number; replica: ReplicaState };
}): Promise<WrittenCheckpoint> {
  const { fs, dir, store } = options;
  const snapshot = store.openSnapshot();
  const revision = snapshot.revision;
  const raft = options.raftPosition?.();
  if (raft)
    assert(raft.revision === revision, () => `Raft position at revision ${raft.revision}, store at ${revision}`);
  const name = raft ? REPLICATED_CHECKPOINT_FILES.fileName(raft.index) : CHECKPOINT_FILES.fileName(revision);
  const temporary = `${dir}/${name}.tmp`;
  try {
    await fs.remove(temporary);
    const file = await fs.openAppend(temporary);
    let entries = 0;
    let keys = 0;
    let bytes = 0;
    try {
      if (raft) {
        await file.append(REPLICATED_CHECKPOINT_FILES.encodeHeader(raft.index));
        await file.append(encodeRaftFrame(raft));
        await file.append(encodeReplicaFrame(raft.replica));
        if (raft.replica.transactions) await file.append(encodeTransactionsFrame(raft.replica.transactions));
      } else await file.append(CHECKPOINT_FILES.encodeHeader(revision));
      let after: string | undefined;
      let syncedAt = 0;
      for (;;) {
        const slice = await snapshot.chains({ after, limit: options.sliceKeysMax });
        if (slice.length === 0) break;
        await file.append(encodeChainsFrame(slice));
        // Synced as it goes, as RocksDB's bytes_per_sync does: on ext4 (data=ordered) a log's fsync
        // flushes every dirty page of the file system with its own, so a whole checkpoint left to
        // the final sync made each commit's fsync wait for it (seconds of stalled writes).
        if (file.size - syncedAt >= CHECKPOINT_SYNC_EVERY_BYTES) {
          await file.sync();
          syncedAt = file.size;
        }
        keys += slice.length;
        entries += slice.filter((chain) => chain.versions.at(-1)!.value !== null).length;
        after = slice.at(-1)!.key;
      }
      // The compacted revision as pinned, not as it is now: a compaction applied while the slices
      // were copied is a later entry (or command), which a restart from this file applies again;
      // claimed here, a replica restored from the file would refuse what the others took before it
      // (a partition's checks read the compacted revision). The snapshot holds GC there meanwhile.
      await file.append(encodeMetaFrame(snapshot.compactedRevision));
      await file.append(encodeEndFrame(keys));
      await file.sync();
      bytes = file.size;
    } finally {
      await file.close();
    }
    await options.beforeRename?.();
    await fs.rename(temporary, `${dir}/${name}`);
    await fs.syncDir(dir);
    return { revision, name, entries, bytes, ...(raft ? { index: raft.index } : {}) };
  } catch (error) {
    await fs.remove(temporary).catch(() => {});
    throw error;
  } finally {
    snapshot.release();
  }
}

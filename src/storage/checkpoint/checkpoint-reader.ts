import { assert } from "../../errors.ts";
import { FormatError } from "../../io/format/bytes.ts";
import { corruptionError, decodeAt } from "../../io/format/corruption.ts";
import { FileFrames } from "../../io/format/file-frames.ts";
import type { FileKind } from "../../io/format/file-kind.ts";
import type { FileSystem, ReadFile } from "../../io/fs/file-system.ts";
import { chainObjects } from "../mvcc/chain-cursor.ts";
import type { RestoreChains } from "../mvcc/store.ts";
import {
  CHECKPOINT_FILES,
  decodeBodyFrame,
  FrameChainCursor,
  type RaftPosition,
  REPLICATED_CHECKPOINT_FILES,
  type ReplicaState,
} from "./checkpoint-format.ts";

/** What a checkpoint's frames say of it; the chains themselves are read only into a store. */
export interface LoadedCheckpoint {
  path: string;
  revision: number;
  compactedRevision: number;
  /** Keys in the file, tombstoned ones included. */
  keys: number;
  /** The file's size. */
  bytes: number;
}

/** A replicated checkpoint: the store, and the Raft index it covers with the term and members there. */
export interface LoadedReplicatedCheckpoint extends LoadedCheckpoint {
  index: number;
  raft: RaftPosition;
  /** What the replicated state machine keeps beside the store at the index. */
  replica: ReplicaState;
}

/**
 * Builds a store from a checkpoint: called once, after every frame of the file was verified, with
 * its chains read from the file a piece at a time as they are taken. They must all be taken, in the
 * call, once; a chain's values are views valid only until the next chain is taken (a store copies
 * them into its slabs).
 */
export type RestoreCheckpoint<C extends LoadedCheckpoint> = (checkpoint: C & { chains: RestoreChains }) => void;

/** A checkpoint restored: what it said of itself, and its live keys (the last version not a tombstone). */
export type RestoredCheckpoint<C extends LoadedCheckpoint> = C & { entries: number };

/** The checkpoints of `kind` in `dir`, newest first, by the number in their names (revision or Raft index). */
export async function listCheckpoints(
  fs: FileSystem,
  dir: string,
  kind: FileKind = CHECKPOINT_FILES,
): Promise<{ name: string; revision: number }[]> {
  return (await fs.list(dir))
    .map((name) => ({ name, revision: kind.parseFileName(name) }))
    .filter((c): c is { name: string; revision: number } => c.revision !== undefined)
    .sort((a, b) => b.revision - a.revision);
}

/**
 * Restores the newest checkpoint through `restore`, verifying every frame first. A damaged one stops
 * the start with an error naming the file and offset, before anything is restored; falling back to
 * an older checkpoint is not safe, because the WAL segments it would need were deleted when the
 * newer checkpoint was completed.
 */
export async function loadNewestCheckpoint(
  fs: FileSystem,
  dir: string,
  restore: RestoreCheckpoint<LoadedCheckpoint>,
): Promise<RestoredCheckpoint<LoadedCheckpoint> | undefined> {
  const [newest] = await listCheckpoints(fs, dir);
  if (!newest) return undefined;
  const path = `${dir}/${newest.name}`;
  return withFile(fs, path, (file) => {
    const { raft, replica: _, number, ...loaded } = scanCheckpoint(file, path, CHECKPOINT_FILES);
    if (raft) throw corruptionError(path, 0, "a plain checkpoint holds a Raft position (a replicated member's file?)");
    if (number !== newest.revision)
      throw corruptionError(path, 0, `header says revision ${number}, the file name ${newest.revision}`);
    return restoreFrom(file, loaded, restore);
  });
}

/** Restores the replicated checkpoint at `path` through `restore`, once every frame is verified and it covers the index in its name. */
export async function loadReplicatedCheckpoint(
  fs: FileSystem,
  path: string,
  restore: RestoreCheckpoint<LoadedReplicatedCheckpoint>,
): Promise<RestoredCheckpoint<LoadedReplicatedCheckpoint>> {
  const named = REPLICATED_CHECKPOINT_FILES.parseFileName(path.slice(path.lastIndexOf("/") + 1));
  return withFile(fs, path, (file) => {
    const { raft, replica, number, ...loaded } = scanCheckpoint(file, path, REPLICATED_CHECKPOINT_FILES);
    if (!raft) throw corruptionError(path, 0, "a replicated checkpoint without its Raft position");
    if (!replica) throw corruptionError(path, 0, "a replicated checkpoint without its replica state");
    if (number !== named) throw corruptionError(path, 0, `header says Raft index ${number}, the file name ${named}`);
    return restoreFrom(file, { ...loaded, index: number, raft, replica }, restore);
  });
}

async function withFile<T>(fs: FileSystem, path: string, use: (file: ReadFile) => T): Promise<T> {
  const file = await fs.openRead(path);
  try {
    return use(file);
  } finally {
    file.close();
  }
}

/**
 * The first pass over a checkpoint of `kind`: every frame verified (checksums, order, the key count
 * in the end frame, nothing after it) and what the file says of itself, without decoding a chain.
 */
function scanCheckpoint(
  file: ReadFile,
  path: string,
  kind: FileKind,
): LoadedCheckpoint & { number: number; raft: RaftPosition | undefined; replica: ReplicaState | undefined } {
  const damaged = (offset: number, reason: string) => corruptionError(path, offset, reason);
  const frames = new FileFrames(file);
  const header = frames.next();
  if (header.kind !== "frame") throw damaged(0, header.kind === "end" ? "empty file" : header.reason);
  const number = decodeAt(path, 0, () => kind.decodeHeader(header.payload));
  const bodyStart = frames.offset;

  let keys = 0;
  let compactedRevision = 0;
  let raft: RaftPosition | undefined;
  let replica: ReplicaState | undefined;
  let previous: string | undefined;
  for (let offset = bodyStart; ; offset = frames.offset) {
    const frame = frames.next();
    if (frame.kind !== "frame")
      throw damaged(offset, frame.kind === "end" ? "the end frame is missing (file cut short)" : frame.reason);
    const body = decodeAt(path, offset, () => decodeBodyFrame(frame.payload));
    if (body.kind === "end") {
      if (body.totalKeys !== keys)
        throw damaged(offset, `end frame counts ${body.totalKeys} keys, the file holds ${keys}`);
      if (frame.next !== file.size) throw damaged(frame.next, "bytes after the end frame");
      const revision = raft?.revision ?? number;
      return { path, revision, compactedRevision, keys, bytes: file.size, number, raft, replica };
    }
    if (body.kind === "raft") {
      // Only first: the position is what the rest of the file is read against.
      if (offset !== bodyStart) throw damaged(offset, "a Raft position that is not the first frame");
      raft = body.position;
    } else if (body.kind === "replica") {
      if (previous !== "raft") throw damaged(offset, "replica state that does not follow the Raft position");
      replica = body.state;
    } else if (body.kind === "transactions") {
      if (previous !== "replica" || !replica)
        throw damaged(offset, "transactions that do not follow the replica state");
      replica = { ...replica, transactions: body.transactions };
    } else if (body.kind === "meta") compactedRevision = body.compactedRevision;
    else keys += body.keys;
    previous = body.kind;
  }
}

/**
 * The second pass: `restore` takes the chains as they are read, a frame of the file in memory at a
 * time, in place (their cursor) or as objects.
 */
function restoreFrom<C extends LoadedCheckpoint>(
  file: ReadFile,
  loaded: C,
  restore: RestoreCheckpoint<C>,
): RestoredCheckpoint<C> {
  const { path } = loaded;
  const frames = new FileFrames(file);
  frames.next(); // the header, verified by the first pass
  let offset = frames.offset; // of the frame being read, for what is found damaged in it
  const cursor = new FrameChainCursor(() => {
    for (;;) {
      offset = frames.offset;
      const frame = frames.next();
      // The first pass read it whole: anything else now is a file changed under the reader.
      if (frame.kind !== "frame") throw corruptionError(path, offset, `changed while read: ${frame.kind}`);
      const body = decodeBodyFrame(frame.payload);
      if (body.kind === "end") return undefined;
      if (body.kind === "chains") return body.chains;
    }
  });
  let taken = false;
  const take = () => {
    assert(!taken, () => `the chains of ${path} are taken twice`);
    taken = true;
    return cursor;
  };
  try {
    restore({ ...loaded, chains: { cursor: take, [Symbol.iterator]: () => chainObjects(take()) } });
  } catch (error) {
    if (error instanceof FormatError) throw corruptionError(path, offset, error.message);
    throw error;
  }
  assert(
    cursor.finished && cursor.taken === loaded.keys,
    () => `restore took ${cursor.taken} of the ${loaded.keys} keys of ${path}`,
  );
  return { ...loaded, entries: cursor.live };
}

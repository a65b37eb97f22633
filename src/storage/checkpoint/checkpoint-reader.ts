import { corruptionError, decodeAt } from "../../io/format/corruption.ts";
import type { FileKind } from "../../io/format/file-kind.ts";
import { readFrame } from "../../io/format/frame.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import type { KeyChain } from "../mvcc/store.ts";
import {
  CHECKPOINT_FILES,
  decodeBodyFrame,
  type RaftPosition,
  REPLICATED_CHECKPOINT_FILES,
  type ReplicaState,
} from "./checkpoint-format.ts";

export interface LoadedCheckpoint {
  path: string;
  revision: number;
  compactedRevision: number;
  chains: KeyChain[];
}

/** A replicated checkpoint: the store, and the Raft index it covers with the term and members there. */
export interface LoadedReplicatedCheckpoint extends LoadedCheckpoint {
  index: number;
  raft: RaftPosition;
  /** What the replicated state machine keeps beside the store at the index. */
  replica: ReplicaState;
  /** The file's size. */
  bytes: number;
}

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
 * Loads the newest checkpoint, verifying every frame. A damaged one stops the start with an error
 * naming the file and offset; falling back to an older checkpoint is not safe, because the WAL
 * segments it would need were deleted when the newer checkpoint was completed.
 */
export async function loadNewestCheckpoint(fs: FileSystem, dir: string): Promise<LoadedCheckpoint | undefined> {
  const [newest] = await listCheckpoints(fs, dir);
  if (!newest) return undefined;
  const path = `${dir}/${newest.name}`;
  const { raft, replica: _, number, ...loaded } = readCheckpoint(await fs.readFile(path), path, CHECKPOINT_FILES);
  if (raft) throw corruptionError(path, 0, "a plain checkpoint holds a Raft position (a replicated member's file?)");
  if (number !== newest.revision)
    throw corruptionError(path, 0, `header says revision ${number}, the file name ${newest.revision}`);
  return loaded;
}

/** Loads the replicated checkpoint at `path`, verifying every frame and that it covers the index in its name. */
export async function loadReplicatedCheckpoint(fs: FileSystem, path: string): Promise<LoadedReplicatedCheckpoint> {
  const named = REPLICATED_CHECKPOINT_FILES.parseFileName(path.slice(path.lastIndexOf("/") + 1));
  const bytes = await fs.readFile(path);
  const { raft, replica, number, ...loaded } = readCheckpoint(bytes, path, REPLICATED_CHECKPOINT_FILES);
  if (!raft) throw corruptionError(path, 0, "a replicated checkpoint without its Raft position");
  if (!replica) throw corruptionError(path, 0, "a replicated checkpoint without its replica state");
  if (number !== named) throw corruptionError(path, 0, `header says Raft index ${number}, the file name ${named}`);
  return { ...loaded, index: number, raft, replica, bytes: bytes.byteLength };
}

/** The frames of a whole checkpoint file of `kind`: the number in its header, and what the body holds. */
function readCheckpoint(
  bytes: Uint8Array,
  path: string,
  kind: FileKind,
): LoadedCheckpoint & { number: number; raft: RaftPosition | undefined; replica: ReplicaState | undefined } {
  const damaged = (offset: number, reason: string) => corruptionError(path, offset, reason);
  const header = readFrame(bytes, 0);
  if (header.kind !== "frame") throw damaged(0, header.kind === "end" ? "empty file" : header.reason);
  const number = decodeAt(path, 0, () => kind.decodeHeader(header.payload));

  const chains: KeyChain[] = [];
  let compactedRevision = 0;
  let raft: RaftPosition | undefined;
  let replica: ReplicaState | undefined;
  let offset = header.next;
  let previous: string | undefined;
  for (;;) {
    const frame = readFrame(bytes, offset);
    if (frame.kind !== "frame")
      throw damaged(offset, frame.kind === "end" ? "the end frame is missing (file cut short)" : frame.reason);
    const body = decodeAt(path, offset, () => decodeBodyFrame(frame.payload));
    if (body.kind === "end") {
      if (body.totalKeys !== chains.length) {
        throw damaged(offset, `end frame counts ${body.totalKeys} keys, the file holds ${chains.length}`);
      }
      if (frame.next !== bytes.byteLength) throw damaged(frame.next, "bytes after the end frame");
      const revision = raft?.revision ?? number;
      return { path, revision, compactedRevision, chains, number, raft, replica };
    }
    if (body.kind === "raft") {
      // Only first: the position is what the rest of the file is read against.
      if (offset !== header.next) throw damaged(offset, "a Raft position that is not the first frame");
      raft = body.position;
    } else if (body.kind === "replica") {
      if (previous !== "raft") throw damaged(offset, "replica state that does not follow the Raft position");
      replica = body.state;
    } else if (body.kind === "meta") compactedRevision = body.compactedRevision;
    else for (const chain of body.chains) chains.push(chain);
    previous = body.kind;
    offset = frame.next;
  }
}

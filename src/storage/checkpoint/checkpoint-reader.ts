import { corruptionError, decodeAt } from "../../io/format/corruption.ts";
import { readFrame } from "../../io/format/frame.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import type { KeyChain } from "../mvcc/store.ts";
import { CHECKPOINT_FILES, decodeBodyFrame } from "./checkpoint-format.ts";

export interface LoadedCheckpoint {
  path: string;
  revision: number;
  compactedRevision: number;
  chains: KeyChain[];
}

/** The checkpoints in `dir`, newest first. */
export async function listCheckpoints(fs: FileSystem, dir: string): Promise<{ name: string; revision: number }[]> {
  return (await fs.list(dir))
    .map((name) => ({ name, revision: CHECKPOINT_FILES.parseFileName(name) }))
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
  const bytes = await fs.readFile(path);
  const damaged = (offset: number, reason: string) => corruptionError(path, offset, reason);

  const header = readFrame(bytes, 0);
  if (header.kind !== "frame") throw damaged(0, header.kind === "end" ? "empty file" : header.reason);
  const revision = decodeAt(path, 0, () => CHECKPOINT_FILES.decodeHeader(header.payload));
  if (revision !== newest.revision)
    throw damaged(0, `header says revision ${revision}, the file name ${newest.revision}`);

  const chains: KeyChain[] = [];
  let compactedRevision = 0;
  let offset = header.next;
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
      return { path, revision, compactedRevision, chains };
    }
    if (body.kind === "meta") compactedRevision = body.compactedRevision;
    else for (const chain of body.chains) chains.push(chain);
    offset = frame.next;
  }
}

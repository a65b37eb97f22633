import { edenGC } from "bun:jsc";
import { corruptionError, decodeAt } from "../../io/format/corruption.ts";
import { FileFrames } from "../../io/format/file-frames.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import type { LogEntry } from "../ops.ts";
import { decodeRecord, recordRevision, WAL_SEGMENTS } from "./wal-format.ts";

export interface SegmentInfo {
  name: string;
  firstRevision: number;
  bytes: number;
}

export interface WalReplay {
  /** The last revision in the log, or `afterRevision` when the log holds nothing newer. */
  lastRevision: number;
  /** The segments left on disk, oldest first (sizes after any torn tail was cut). */
  segments: SegmentInfo[];
  /** Bytes cut from the end of the last segment: a write the crash interrupted. */
  tornBytes: number;
}

/**
 * Bytes of records replayed between two collections of the young garbage their commands leave (keys
 * decoded, values copied, change events: some 300 bytes a key). Left to the collector's own pace, it
 * is let run to a share of the heap, and the heap counts the store's slabs: replaying a million keys
 * peaked at 455 MiB for a store of 217 (a collection every 2.4 MiB: 311 MiB, and no slower).
 */
const COLLECT_AFTER_BYTES = 2 * 1024 * 1024;

/**
 * Reads every segment in order and hands each batch after `afterRevision` to `apply`.
 *
 * A torn tail — the last segment ends inside a frame, as a crash during an append leaves it — is cut
 * off (those writes were never acknowledged). Anything else that does not read back (a bad checksum
 * with data after it, a gap in the revisions, a damaged segment that is not the last) stops the
 * replay with an error naming the file and offset: acknowledged data is never dropped silently.
 */
export async function replayWal(options: {
  fs: FileSystem;
  dir: string;
  afterRevision: number;
  apply: (entry: LogEntry) => void;
}): Promise<WalReplay> {
  const { fs, dir } = options;
  const found = (await fs.list(dir))
    .map((name) => ({ name, firstRevision: WAL_SEGMENTS.parseFileName(name) }))
    .filter((s): s is { name: string; firstRevision: number } => s.firstRevision !== undefined)
    .sort((a, b) => a.firstRevision - b.firstRevision);

  const segments: SegmentInfo[] = [];
  let tornBytes = 0;
  let previous: number | undefined; // last revision read from the log
  let appliedBytes = 0; // of records applied since the last collection
  for (const [index, { name, firstRevision }] of found.entries()) {
    const path = `${dir}/${name}`;
    const isLast = index === found.length - 1;
    // A chunk at a time: a segment is up to 64 MiB, and a start must not need that much more memory.
    const file = await fs.openRead(path);
    let offset = 0;
    try {
      const frames = new FileFrames(file);
      const header = frames.next();
      if (header.kind !== "frame") {
        if (isLast && header.kind !== "corrupt") {
          // A segment created just before the crash, its header never written whole.
          await fs.remove(path);
          tornBytes += file.size;
          break;
        }
        throw corruptionError(path, 0, header.kind === "end" ? "empty segment" : header.reason);
      }
      const headerRevision = decodeAt(path, 0, () => WAL_SEGMENTS.decodeHeader(header.payload));
      if (headerRevision !== firstRevision) {
        throw corruptionError(path, 0, `header says first revision ${headerRevision}, the file name ${firstRevision}`);
      }
      const expectedFirst = previous === undefined ? options.afterRevision + 1 : previous + 1;
      if (previous === undefined ? firstRevision > expectedFirst : firstRevision !== expectedFirst) {
        throw corruptionError(path, 0, `revisions ${expectedFirst}..${firstRevision - 1} are missing from the log`);
      }

      for (offset = frames.offset; ; offset = frames.offset) {
        const frame = frames.next();
        if (frame.kind === "end") break;
        if (frame.kind === "frame") {
          // A record the checkpoint already covers is only counted, not decoded (a clean shutdown
          // leaves a whole segment of them).
          const revision = decodeAt(path, offset, () => recordRevision(frame.payload));
          const expected = previous === undefined ? firstRevision : previous + 1;
          if (revision !== expected) {
            throw corruptionError(path, offset, `record has revision ${revision}, expected ${expected}`);
          }
          previous = revision;
          if (revision > options.afterRevision) {
            options.apply(decodeAt(path, offset, () => decodeRecord(frame.payload)));
            appliedBytes += frame.payload.byteLength;
            if (appliedBytes >= COLLECT_AFTER_BYTES) {
              appliedBytes = 0;
              edenGC();
            }
          }
          continue;
        }
        if (frame.kind === "torn" && isLast) {
          const append = await fs.openAppend(path);
          try {
            await append.truncate(offset);
            await append.sync();
          } finally {
            await append.close();
          }
          tornBytes += file.size - offset;
          break;
        }
        throw corruptionError(path, offset, frame.reason);
      }
    } finally {
      file.close();
    }
    if (previous === undefined) previous = firstRevision - 1;
    segments.push({ name, firstRevision, bytes: offset });
  }
  return { lastRevision: Math.max(options.afterRevision, previous ?? 0), segments, tornBytes };
}

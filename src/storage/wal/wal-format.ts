import { ByteReader, ByteWriter } from "../../io/format/bytes.ts";
import { FileKind } from "../../io/format/file-kind.ts";
import { FRAME_HEADER_BYTES, FRAME_HEADER_PLACEHOLDER, sealFrame } from "../../io/format/frame.ts";
import { commandBytesMax, readCommand, writeCommand } from "../command-format.ts";
import type { LogEntry } from "../ops.ts";

/**
 * The write-ahead log's on-disk format (frozen; enum values are never renumbered).
 *
 * A WAL is a directory of segment files named `<first revision, 20 digits>.wal`. Each segment is a
 * sequence of frames (src/io/format/frame.ts), the first one the header of src/io/format/file-kind.ts:
 *
 *   frame 0      segment header: "HKVWAL" · u8 format version (1) · u64 first revision
 *   frame 1..n   one committed command each, as src/storage/command-format.ts writes it with its
 *                revision: u8 record type · u64 revision · the command's body
 *
 * Revisions run without gaps, within a segment and from one segment to the next.
 */
export const WAL_SEGMENTS = new FileKind("WAL segment", "HKVWAL", 1, ".wal");

/** Encodes commands as consecutive frames into one buffer, so that a group commit is one write. */
export function encodeRecords(entries: readonly LogEntry[]): Uint8Array {
  let bytesMax = 0;
  for (const entry of entries) bytesMax += FRAME_HEADER_BYTES + commandBytesMax(entry);
  const out = new ByteWriter(bytesMax);
  for (const entry of entries) {
    const start = out.size;
    out.raw(FRAME_HEADER_PLACEHOLDER);
    writeCommand(out, entry, entry.revision);
    sealFrame(out.written(), start);
  }
  return out.written();
}

/** The revision of a record, read without decoding the command. */
export function recordRevision(payload: Uint8Array): number {
  const reader = new ByteReader(payload);
  reader.u8();
  return reader.u64();
}

export function decodeRecord(payload: Uint8Array): LogEntry {
  return readCommand(new ByteReader(payload), { revision: true });
}

import { ByteReader, ByteWriter, FormatError } from "../format/bytes.ts";
import { FileKind } from "../format/file-kind.ts";
import { FRAME_HEADER_PLACEHOLDER, sealFrame } from "../format/frame.ts";
import type { LogEntry, WriteOp } from "../ops.ts";

/**
 * The write-ahead log's on-disk format (frozen; enum values are never renumbered).
 *
 * A WAL is a directory of segment files named `<first revision, 20 digits>.wal`. Each segment is a
 * sequence of frames (src/storage/format/frame.ts), the first one the header of src/storage/format/file-kind.ts:
 *
 *   frame 0      segment header: "HKVWAL" · u8 format version (1) · u64 first revision
 *   frame 1..n   one committed batch each:
 *                  u8 record type (1 = batch) · u64 revision · u32 op count ·
 *                  per op: u8 kind (1 = put, 2 = delete) · u32 key length · key (UTF-8)
 *                          · for a put: u32 value length · value
 *
 * Revisions run without gaps, within a segment and from one segment to the next.
 */
export const WAL_SEGMENTS = new FileKind("WAL segment", "HKVWAL", 1, ".wal");
const RECORD_BATCH = 1;
const OP_PUT = 1;
const OP_DELETE = 2;

/** Encodes batches as consecutive frames into one buffer, so that a group commit is one write. */
export function encodeRecords(entries: readonly LogEntry[]): Uint8Array {
  const out = new ByteWriter(4096);
  for (const entry of entries) {
    const start = out.size;
    out.raw(FRAME_HEADER_PLACEHOLDER).u8(RECORD_BATCH).u64(entry.revision).u32(entry.ops.length);
    for (const op of entry.ops) {
      out.u8(op.value === null ? OP_DELETE : OP_PUT).string(op.key);
      if (op.value !== null) out.bytes(op.value);
    }
    sealFrame(out.written(), start);
  }
  return out.written();
}

export function decodeRecord(payload: Uint8Array): LogEntry {
  const reader = new ByteReader(payload);
  const type = reader.u8();
  if (type !== RECORD_BATCH) throw new FormatError(`unknown WAL record type ${type}`);
  const revision = reader.u64();
  const count = reader.u32();
  const ops: WriteOp[] = [];
  for (let i = 0; i < count; i++) {
    const kind = reader.u8();
    const key = reader.string();
    if (kind === OP_PUT) ops.push({ key, value: reader.bytesCopy() });
    else if (kind === OP_DELETE) ops.push({ key, value: null });
    else throw new FormatError(`unknown WAL op kind ${kind}`);
  }
  if (reader.remaining !== 0) throw new FormatError(`${reader.remaining} stray bytes after a WAL record`);
  return { revision, ops };
}

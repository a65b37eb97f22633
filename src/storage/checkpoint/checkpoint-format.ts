import { ByteReader, ByteWriter, FormatError } from "../format/bytes.ts";
import { FileKind } from "../format/file-kind.ts";
import { encodeFrame, FRAME_HEADER_PLACEHOLDER, sealFrame } from "../format/frame.ts";
import type { KeyValue } from "../mvcc/store.ts";

/**
 * The checkpoint file format (frozen; enum values are never renumbered). A checkpoint holds the
 * live state of the store at one revision, in key order, as frames (src/storage/format/frame.ts):
 *
 *   frame 0      header: "HKVCKP" · u8 format version (1) · u64 revision
 *   frame 1..n   u8 type (1 = entries) · u32 count · per entry:
 *                  u32 key length · key (UTF-8) · u64 revision that wrote it · u32 value length · value
 *   last frame   u8 type (2 = end) · u64 total entries
 *
 * A checkpoint is written under a temporary name and renamed when complete, so every frame must
 * read back: there is no torn tail to tolerate, and a missing end frame is damage.
 * File name: `<revision, 20 digits>.ckpt`.
 */
export const CHECKPOINT_FILES = new FileKind("checkpoint", "HKVCKP", 1, ".ckpt");
const FRAME_ENTRIES = 1;
const FRAME_END = 2;

export function encodeEntriesFrame(entries: readonly KeyValue[]): Uint8Array {
  const out = new ByteWriter(4096);
  out.raw(FRAME_HEADER_PLACEHOLDER).u8(FRAME_ENTRIES).u32(entries.length);
  for (const { key, value, revision } of entries) out.string(key).u64(revision).bytes(value);
  const frame = out.written();
  sealFrame(frame, 0);
  return frame;
}

export function encodeEndFrame(totalEntries: number): Uint8Array {
  return encodeFrame(new ByteWriter(16).u8(FRAME_END).u64(totalEntries).written());
}

export type BodyFrame = { kind: "entries"; entries: KeyValue[] } | { kind: "end"; totalEntries: number };

export function decodeBodyFrame(payload: Uint8Array): BodyFrame {
  const reader = new ByteReader(payload);
  const type = reader.u8();
  if (type === FRAME_END) return { kind: "end", totalEntries: reader.u64() };
  if (type !== FRAME_ENTRIES) throw new FormatError(`unknown checkpoint frame type ${type}`);
  const count = reader.u32();
  const entries: KeyValue[] = [];
  for (let i = 0; i < count; i++) {
    const key = reader.string();
    const revision = reader.u64();
    entries.push({ key, revision, value: reader.bytesCopy() });
  }
  if (reader.remaining !== 0) throw new FormatError(`${reader.remaining} stray bytes after checkpoint entries`);
  return { kind: "entries", entries };
}

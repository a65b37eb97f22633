import { ByteReader, ByteWriter, FormatError } from "../../../io/format/bytes.ts";
import { FRAME_HEADER_PLACEHOLDER, sealFrame } from "../../../io/format/frame.ts";

/**
 * Version edits: what the manifest log records (frozen format, docs/internals/flsm-manifest-format.md;
 * tags are never renumbered). An edit is a list of items applied in order and atomically: it is
 * one frame, so a crash keeps all of it or none.
 */

/** A table as the manifest knows it: enough to place it and to skip it without opening it. */
export interface TableMeta {
  /** The file number: the table is `<number>.sst`. */
  readonly number: number;
  readonly level: number;
  /** The guard it belongs to; absent at level 0 and in a level's sentinel range (below its first guard). */
  readonly guard?: Uint8Array;
  readonly fileBytes: number;
  readonly smallest: Uint8Array;
  readonly largest: Uint8Array;
  readonly minRevision: number;
  readonly maxRevision: number;
  readonly entries: number;
}

export type EditItem =
  | { readonly kind: "add-table"; readonly table: TableMeta }
  | { readonly kind: "remove-table"; readonly number: number; readonly level: number }
  | { readonly kind: "add-guard"; readonly level: number; readonly key: Uint8Array }
  /** File numbers at or above it are unused. */
  | { readonly kind: "next-file-number"; readonly number: number }
  /** Every WAL record at or below it is in tables. */
  | { readonly kind: "flushed-revision"; readonly revision: number }
  | { readonly kind: "compacted-revision"; readonly revision: number }
  /** The store's live keys and their value bytes at the flushed revision (its stats, without a scan at start). */
  | { readonly kind: "live-totals"; readonly keys: number; readonly valueBytes: number };

export type VersionEdit = readonly EditItem[];

/** The type byte that starts an edit frame's payload (the manifest header frame starts with its magic). */
const PAYLOAD_EDIT = 1;
const TAG_ADD_TABLE = 1;
const TAG_REMOVE_TABLE = 2;
const TAG_ADD_GUARD = 3;
const TAG_NEXT_FILE_NUMBER = 4;
const TAG_FLUSHED_REVISION = 5;
const TAG_COMPACTED_REVISION = 6;
const TAG_LIVE_TOTALS = 7;

/** One edit as one frame. */
export function encodeEditFrame(edit: VersionEdit): Uint8Array {
  const out = new ByteWriter(64 + 64 * edit.length);
  out.raw(FRAME_HEADER_PLACEHOLDER).u8(PAYLOAD_EDIT).varint(edit.length);
  for (const item of edit) {
    switch (item.kind) {
      case "add-table": {
        const t = item.table;
        out
          .u8(TAG_ADD_TABLE)
          .varint(t.number)
          .varint(t.level)
          .u8(t.guard ? 1 : 0);
        if (t.guard) out.bytes(t.guard);
        out.varint(t.fileBytes).bytes(t.smallest).bytes(t.largest);
        out.varint(t.minRevision).varint(t.maxRevision).varint(t.entries);
        break;
      }
      case "remove-table":
        out.u8(TAG_REMOVE_TABLE).varint(item.number).varint(item.level);
        break;
      case "add-guard":
        out.u8(TAG_ADD_GUARD).varint(item.level).bytes(item.key);
        break;
      case "next-file-number":
        out.u8(TAG_NEXT_FILE_NUMBER).varint(item.number);
        break;
      case "flushed-revision":
        out.u8(TAG_FLUSHED_REVISION).varint(item.revision);
        break;
      case "compacted-revision":
        out.u8(TAG_COMPACTED_REVISION).varint(item.revision);
        break;
      case "live-totals":
        out.u8(TAG_LIVE_TOTALS).varint(item.keys).varint(item.valueBytes);
        break;
    }
  }
  const frame = out.written().slice();
  sealFrame(frame, 0);
  return frame;
}

/** Decodes an edit frame's payload; damaged contents throw a FormatError. Keys are copies. */
export function decodeEdit(payload: Uint8Array): VersionEdit {
  const reader = new ByteReader(payload);
  const type = reader.u8();
  if (type !== PAYLOAD_EDIT) throw new FormatError(`unknown manifest frame type ${type}`);
  const count = reader.varint();
  // Every item takes at least 2 bytes: a count the payload cannot hold is damage, found before looping.
  if (count * 2 > reader.remaining) throw new FormatError(`${count} edit items in ${reader.remaining} bytes`);
  const edit: EditItem[] = [];
  for (let n = count; n > 0; n--) edit.push(decodeItem(reader));
  if (reader.remaining !== 0) throw new FormatError(`${reader.remaining} stray bytes after a version edit`);
  return edit;
}

function decodeItem(reader: ByteReader): EditItem {
  const at = reader.position;
  const tag = reader.u8();
  switch (tag) {
    case TAG_ADD_TABLE: {
      const number = reader.varint();
      const level = reader.varint();
      const hasGuard = reader.u8();
      if (hasGuard > 1) throw new FormatError(`guard flag ${hasGuard} at ${at}`);
      const guard = hasGuard ? reader.bytesCopy() : undefined;
      const fileBytes = reader.varint();
      const smallest = reader.bytesCopy();
      const largest = reader.bytesCopy();
      const minRevision = reader.varint();
      const maxRevision = reader.varint();
      const entries = reader.varint();
      const table = { number, level, fileBytes, smallest, largest, minRevision, maxRevision, entries };
      return { kind: "add-table", table: guard ? { ...table, guard } : table };
    }
    case TAG_REMOVE_TABLE:
      return { kind: "remove-table", number: reader.varint(), level: reader.varint() };
    case TAG_ADD_GUARD:
      return { kind: "add-guard", level: reader.varint(), key: reader.bytesCopy() };
    case TAG_NEXT_FILE_NUMBER:
      return { kind: "next-file-number", number: reader.varint() };
    case TAG_FLUSHED_REVISION:
      return { kind: "flushed-revision", revision: reader.varint() };
    case TAG_COMPACTED_REVISION:
      return { kind: "compacted-revision", revision: reader.varint() };
    case TAG_LIVE_TOTALS:
      return { kind: "live-totals", keys: reader.varint(), valueBytes: reader.varint() };
    default:
      throw new FormatError(`unknown version edit item tag ${tag} at ${at}`);
  }
}

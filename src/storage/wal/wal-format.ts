import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";
import { FileKind } from "../../io/format/file-kind.ts";
import { FRAME_HEADER_PLACEHOLDER, sealFrame } from "../../io/format/frame.ts";
import type { Compare, CompareOp, CompareTarget, LogEntry, TxnOp, WriteOp } from "../ops.ts";

/**
 * The write-ahead log's on-disk format (frozen; enum values are never renumbered).
 *
 * A WAL is a directory of segment files named `<first revision, 20 digits>.wal`. Each segment is a
 * sequence of frames (src/io/format/frame.ts), the first one the header of src/io/format/file-kind.ts:
 *
 *   frame 0      segment header: "HKVWAL" · u8 format version (1) · u64 first revision
 *   frame 1..n   one committed command each: u8 record type · u64 revision · then by type:
 *     1 batch    u32 op count · ops
 *     2 txn      u32 compare count · compares · u32 count · success ops · u32 count · failure ops
 *     3 compact  u64 revision to compact to
 *     4 expire   u32 count · per key: string key · u64 revision of the version that expires
 *
 *   op:       u8 kind · string key · then by kind:
 *               1 put: bytes value;  2 delete: nothing;  3 put with TTL: u64 expires-at (Unix ms) · bytes value;
 *               4 get (txn only): nothing
 *   compare:  string key · u8 target (1 value, 2 mod_revision, 3 create_revision, 4 version, 5 exists)
 *             · u8 op (1 ==, 2 !=, 3 <, 4 >) · bytes value · u64 number
 *   string / bytes: u32 length, then the bytes (UTF-8 for strings)
 *
 * Revisions run without gaps, within a segment and from one segment to the next.
 */
export const WAL_SEGMENTS = new FileKind("WAL segment", "HKVWAL", 1, ".wal");
const RECORD_BATCH = 1;
const RECORD_TXN = 2;
const RECORD_COMPACT = 3;
const RECORD_EXPIRE = 4;
const OP_PUT = 1;
const OP_DELETE = 2;
const OP_PUT_TTL = 3;
const OP_GET = 4;
const TARGETS: readonly CompareTarget[] = ["value", "mod_revision", "create_revision", "version", "exists"]; // 1-based on disk
const COMPARE_OPS: readonly CompareOp[] = ["==", "!=", "<", ">"]; // 1-based on disk

/** Encodes commands as consecutive frames into one buffer, so that a group commit is one write. */
export function encodeRecords(entries: readonly LogEntry[]): Uint8Array {
  const out = new ByteWriter(4096);
  for (const entry of entries) {
    const start = out.size;
    out.raw(FRAME_HEADER_PLACEHOLDER);
    switch (entry.kind) {
      case undefined:
      case "batch":
        out.u8(RECORD_BATCH).u64(entry.revision);
        writeOps(out, entry.ops);
        break;
      case "txn":
        out.u8(RECORD_TXN).u64(entry.revision).u32(entry.txn.compares.length);
        for (const clause of entry.txn.compares) {
          out
            .string(clause.key)
            .u8(TARGETS.indexOf(clause.target) + 1)
            .u8(COMPARE_OPS.indexOf(clause.op) + 1);
          out.bytes(clause.value ?? EMPTY).u64(clause.number ?? 0);
        }
        writeOps(out, entry.txn.success);
        writeOps(out, entry.txn.failure);
        break;
      case "compact":
        out.u8(RECORD_COMPACT).u64(entry.revision).u64(entry.compactTo);
        break;
      case "expire":
        out.u8(RECORD_EXPIRE).u64(entry.revision).u32(entry.keys.length);
        for (const { key, revision } of entry.keys) out.string(key).u64(revision);
        break;
    }
    sealFrame(out.written(), start);
  }
  return out.written();
}

export function decodeRecord(payload: Uint8Array): LogEntry {
  const reader = new ByteReader(payload);
  const type = reader.u8();
  const revision = reader.u64();
  let entry: LogEntry;
  switch (type) {
    case RECORD_BATCH:
      entry = { revision, ops: readOps(reader).map(asWrite) };
      break;
    case RECORD_TXN: {
      const compares: Compare[] = [];
      for (let n = reader.u32(); n > 0; n--) {
        const key = reader.string();
        const target = TARGETS[reader.u8() - 1];
        const op = COMPARE_OPS[reader.u8() - 1];
        if (target === undefined || op === undefined) throw new FormatError("unknown compare target or operator");
        compares.push({ key, target, op, value: reader.bytesCopy(), number: reader.u64() });
      }
      entry = { revision, kind: "txn", txn: { compares, success: readOps(reader), failure: readOps(reader) } };
      break;
    }
    case RECORD_COMPACT:
      entry = { revision, kind: "compact", compactTo: reader.u64() };
      break;
    case RECORD_EXPIRE: {
      const keys: { key: string; revision: number }[] = [];
      for (let n = reader.u32(); n > 0; n--) keys.push({ key: reader.string(), revision: reader.u64() });
      entry = { revision, kind: "expire", keys };
      break;
    }
    default:
      throw new FormatError(`unknown WAL record type ${type}`);
  }
  if (reader.remaining !== 0) throw new FormatError(`${reader.remaining} stray bytes after a WAL record`);
  return entry;
}

const EMPTY = new Uint8Array(0);

function writeOps(out: ByteWriter, ops: readonly TxnOp[]): void {
  out.u32(ops.length);
  for (const op of ops) {
    if ("get" in op) out.u8(OP_GET).string(op.get);
    else if (op.value === null) out.u8(OP_DELETE).string(op.key);
    else if (op.expiresAtMs !== undefined) out.u8(OP_PUT_TTL).string(op.key).u64(op.expiresAtMs).bytes(op.value);
    else out.u8(OP_PUT).string(op.key).bytes(op.value);
  }
}

function readOps(reader: ByteReader): TxnOp[] {
  const ops: TxnOp[] = [];
  for (let n = reader.u32(); n > 0; n--) {
    const kind = reader.u8();
    const key = reader.string();
    if (kind === OP_PUT) ops.push({ key, value: reader.bytesCopy() });
    else if (kind === OP_DELETE) ops.push({ key, value: null });
    else if (kind === OP_PUT_TTL) ops.push({ key, expiresAtMs: reader.u64(), value: reader.bytesCopy() });
    else if (kind === OP_GET) ops.push({ get: key });
    else throw new FormatError(`unknown WAL op kind ${kind}`);
  }
  return ops;
}

function asWrite(op: TxnOp): WriteOp {
  if ("get" in op) throw new FormatError("a get in a batch record");
  return op;
}

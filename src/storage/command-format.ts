import { ByteReader, ByteWriter, FormatError } from "../io/format/bytes.ts";
import { compareNumber } from "./mvcc/compare.ts";
import type { Command, Compare, CompareOp, CompareTarget, LogEntry, TxnOp, WriteOp } from "./ops.ts";

/**
 * How a command is written, wherever it is stored or sent (frozen; enum values are never
 * renumbered): the WAL's records (src/storage/wal/wal-format.ts) and the data of Raft entries
 * (src/cluster/replication/raft-commit-log.ts) share it.
 *
 *   u8 type · [u64 revision, in the WAL only] · then by type:
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
 */
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

/** Writes `command`; with `revision`, the WAL's record layout (the revision after the type). */
export function writeCommand(out: ByteWriter, command: Command, revision?: number): void {
  const typed = (type: number) => {
    out.u8(type);
    if (revision !== undefined) out.u64(revision);
    return out;
  };
  switch (command.kind) {
    case undefined:
    case "batch":
      writeOps(typed(RECORD_BATCH), command.ops);
      break;
    case "txn":
      typed(RECORD_TXN).u32(command.txn.compares.length);
      for (const clause of command.txn.compares) {
        out
          .string(clause.key)
          .u8(TARGETS.indexOf(clause.target) + 1)
          .u8(COMPARE_OPS.indexOf(clause.op) + 1);
        out.bytes(clause.value ?? EMPTY).u64(compareNumber(clause));
      }
      writeOps(out, command.txn.success);
      writeOps(out, command.txn.failure);
      break;
    case "compact":
      typed(RECORD_COMPACT).u64(command.compactTo);
      break;
    case "expire":
      typed(RECORD_EXPIRE).u32(command.keys.length);
      for (const { key, revision: expiring } of command.keys) out.string(key).u64(expiring);
      break;
  }
}

/** Reads what `writeCommand` wrote, the whole of `reader`'s bytes; with `revision`, the WAL's layout. */
export function readCommand(reader: ByteReader, layout: { revision: true }): LogEntry;
export function readCommand(reader: ByteReader, layout: { revision: false }): Command;
export function readCommand(reader: ByteReader, layout: { revision: boolean }): Command | LogEntry {
  const type = reader.u8();
  const revision = layout.revision ? reader.u64() : undefined;
  let command: Command;
  switch (type) {
    case RECORD_BATCH:
      command = { ops: readOps(reader, false) as WriteOp[] };
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
      command = { kind: "txn", txn: { compares, success: readOps(reader, true), failure: readOps(reader, true) } };
      break;
    }
    case RECORD_COMPACT:
      command = { kind: "compact", compactTo: reader.u64() };
      break;
    case RECORD_EXPIRE: {
      const keys: { key: string; revision: number }[] = [];
      for (let n = reader.u32(); n > 0; n--) keys.push({ key: reader.string(), revision: reader.u64() });
      command = { kind: "expire", keys };
      break;
    }
    default:
      throw new FormatError(`unknown command type ${type}`);
  }
  if (reader.remaining !== 0) throw new FormatError(`${reader.remaining} stray bytes after a command`);
  return revision === undefined ? command : { revision, ...command };
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

/** A batch's ops (`gets` false: writes only) or a transaction branch's. */
function readOps(reader: ByteReader, gets: boolean): TxnOp[] {
  const ops: TxnOp[] = [];
  for (let n = reader.u32(); n > 0; n--) {
    const kind = reader.u8();
    const key = reader.string();
    if (kind === OP_PUT) ops.push({ key, value: reader.bytesCopy() });
    else if (kind === OP_DELETE) ops.push({ key, value: null });
    else if (kind === OP_PUT_TTL) ops.push({ key, expiresAtMs: reader.u64(), value: reader.bytesCopy() });
    else if (kind === OP_GET && gets) ops.push({ get: key });
    else if (kind === OP_GET) throw new FormatError("a get in a batch");
    else throw new FormatError(`unknown op kind ${kind}`);
  }
  return ops;
}

/**
 * Bytes `writeCommand` may write for `command` with its revision: exact but for strings, counted at
 * their most (3 UTF-8 bytes per UTF-16 unit, as ByteWriter.string reserves them). A writer made
 * this large never grows; each growth copies everything written so far (a group commit of 64
 * batches of 100 keys grew its buffer eight times).
 */
export function commandBytesMax(command: Command): number {
  const string = (text: string) => 4 + 3 * text.length;
  const ops = (list: readonly TxnOp[]) => {
    let bytes = 4;
    for (const op of list)
      bytes += "get" in op ? 1 + string(op.get) : 1 + string(op.key) + 8 + 4 + (op.value?.byteLength ?? 0);
    return bytes;
  };
  const head = 1 + 8;
  switch (command.kind) {
    case undefined:
    case "batch":
      return head + ops(command.ops);
    case "txn": {
      let compares = 4;
      for (const clause of command.txn.compares)
        compares += string(clause.key) + 2 + 4 + (clause.value?.byteLength ?? 0) + 8;
      return head + compares + ops(command.txn.success) + ops(command.txn.failure);
    }
    case "compact":
      return head + 8;
    case "expire": {
      let keys = 4;
      for (const { key } of command.keys) keys += string(key) + 8;
      return head + keys;
    }
  }
}

/** A ByteWriter's output for one command, without a revision (a Raft entry's data). */
export function encodeCommand(command: Command): Uint8Array {
  const out = new ByteWriter(commandBytesMax(command));
  writeCommand(out, command);
  return out.written();
}

export function decodeCommand(bytes: Uint8Array): Command {
  return readCommand(new ByteReader(bytes), { revision: false });
}

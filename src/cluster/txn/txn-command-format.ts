import { assert } from "../../errors.ts";
import { type ByteReader, ByteWriter, FormatError, readVersioned } from "../../io/format/bytes.ts";
import {
  type ExpiringKey,
  LOCK_ONLY,
  type Mutation,
  type MutationValue,
  type TxnOutcome,
  type TxnPartition,
  type WriteRequest,
} from "./percolator.ts";

/**
 * A partition group's transaction commands (its Raft entries' data), and what applying one does.
 * Frozen once a server writes it (none does yet), version 1: type codes are never renumbered, a
 * change of layout is a new version. Integers are varints (bytes.ts) unless marked u8; a string is
 * u32 length · UTF-8, bytes u32 length · bytes.
 *
 *   command     u8 version · u8 type · body
 *     1 onePhase   varint startTs (0: a blind write) · varint commitTs · mutations
 *     2 prewrite   varint startTs · string primary · varint expiresAtMs · mutations
 *     3 commit     varint startTs · varint commitTs · u8 decides · [string primary, if decides] · keys
 *     4 rollback   varint startTs · u8 decides · keys
 *     5 compact    varint revision
 *     6 expire     varint commitTs · varint n · n × (string key · varint revision)
 *     7 commit deciding a write with a request id: varint startTs · varint commitTs · string primary ·
 *                  keys · string request id · varint deleted · u8 succeeded (0 not a transaction,
 *                  1 false, 2 true) — decoded as a commit with its `request`
 *   mutations   varint n · n × (string key · u8 kind (1 put: bytes value; 2 delete; 3 lock only;
 *               4 put with a TTL: bytes value · varint expiresAtMs))
 *   keys        varint n · n × string
 */
export type TxnCommand =
  | {
      readonly type: "onePhase";
      readonly startTs?: number;
      readonly commitTs: number;
      readonly mutations: readonly Mutation[];
    }
  | {
      readonly type: "prewrite";
      readonly startTs: number;
      readonly primary: string;
      readonly expiresAtMs: number;
      readonly mutations: readonly Mutation[];
    }
  | {
      readonly type: "commit";
      readonly startTs: number;
      readonly commitTs: number;
      readonly keys: readonly string[];
      readonly primary?: string;
      /** The write's request id (only with `primary`: the commit that decides remembers it). */
      readonly request?: WriteRequest;
    }
  | {
      readonly type: "rollback";
      readonly startTs: number;
      readonly keys: readonly string[];
      readonly decides: boolean;
    }
  | { readonly type: "compact"; readonly revision: number }
  | { readonly type: "expire"; readonly commitTs: number; readonly keys: readonly ExpiringKey[] };

const VERSION = 1;
const TYPE_CODES = { onePhase: 1, prewrite: 2, commit: 3, rollback: 4, compact: 5, expire: 6 } as const;
const TYPES = new Map(Object.entries(TYPE_CODES).map(([type, code]) => [code as number, type as TxnCommand["type"]]));
/** A commit with a request id: a type of its own, so that commands written before it read as they did. */
const COMMIT_WITH_REQUEST = 7;
const PUT = 1;
const DELETE = 2;
const LOCK = 3;
const PUT_WITH_TTL = 4;

/** What applying `command` to `partition` does (every replica alike). */
export function applyTxnCommand(partition: TxnPartition, command: TxnCommand): TxnOutcome {
  switch (command.type) {
    case "onePhase":
      return partition.onePhase(command.startTs, command.commitTs, command.mutations);
    case "prewrite":
      return partition.prewrite(command.startTs, command.primary, command.mutations, command.expiresAtMs);
    case "commit":
      return partition.commit(command.startTs, command.commitTs, command.keys, command.primary, command.request);
    case "rollback":
      return partition.rollback(command.startTs, command.keys, command.decides);
    case "compact":
      partition.compact(command.revision);
      return { ok: true };
    case "expire":
      return partition.expire(command.commitTs, command.keys);
  }
}

export function encodeTxnCommand(command: TxnCommand): Uint8Array {
  const w = new ByteWriter(64).u8(VERSION);
  if (command.type === "commit" && command.request) {
    const { request } = command;
    assert(command.primary !== undefined, "a request id rides only on the commit that decides");
    w.u8(COMMIT_WITH_REQUEST).varint(command.startTs).varint(command.commitTs).string(command.primary);
    writeKeys(w, command.keys);
    const succeeded = request.succeeded === undefined ? 0 : request.succeeded ? 2 : 1;
    w.string(request.id).varint(request.deleted).u8(succeeded);
    return w.written().slice();
  }
  w.u8(TYPE_CODES[command.type]);
  switch (command.type) {
    case "onePhase":
      writeMutations(w.varint(command.startTs ?? 0).varint(command.commitTs), command.mutations);
      break;
    case "prewrite":
      w.varint(command.startTs).string(command.primary).varint(command.expiresAtMs);
      writeMutations(w, command.mutations);
      break;
    case "commit":
      w.varint(command.startTs)
        .varint(command.commitTs)
        .u8(command.primary === undefined ? 0 : 1);
      if (command.primary !== undefined) w.string(command.primary);
      writeKeys(w, command.keys);
      break;
    case "rollback":
      writeKeys(w.varint(command.startTs).u8(command.decides ? 1 : 0), command.keys);
      break;
    case "compact":
      w.varint(command.revision);
      break;
    case "expire":
      w.varint(command.commitTs).varint(command.keys.length);
      for (const { key, revision } of command.keys) w.string(key).varint(revision);
      break;
  }
  return w.written().slice();
}

export function decodeTxnCommand(bytes: Uint8Array): TxnCommand {
  return readVersioned(bytes, VERSION, "a transaction command", readCommand);
}

function readCommand(r: ByteReader): TxnCommand {
  const at = r.position;
  const code = r.u8();
  if (code === COMMIT_WITH_REQUEST) return readCommitWithRequest(r);
  const type = TYPES.get(code);
  let command: TxnCommand;
  switch (type) {
    case "onePhase": {
      const startTs = r.varint();
      command = { type, ...(startTs === 0 ? {} : { startTs }), commitTs: r.varint(), mutations: readMutations(r) };
      break;
    }
    case "prewrite":
      command = {
        type,
        startTs: r.varint(),
        primary: r.string(),
        expiresAtMs: r.varint(),
        mutations: readMutations(r),
      };
      break;
    case "commit": {
      const startTs = r.varint();
      const commitTs = r.varint();
      const primary = flag(r) ? r.string() : undefined;
      command = { type, startTs, commitTs, keys: readKeys(r), ...(primary === undefined ? {} : { primary }) };
      break;
    }
    case "rollback": {
      const startTs = r.varint();
      command = { type, startTs, decides: flag(r), keys: readKeys(r) };
      break;
    }
    case "compact":
      command = { type, revision: r.varint() };
      break;
    case "expire": {
      const commitTs = r.varint();
      command = {
        type,
        commitTs,
        keys: Array.from({ length: count(r) }, () => ({ key: r.string(), revision: r.varint() })),
      };
      break;
    }
    default:
      throw new FormatError(`unknown transaction command type at byte ${at}`);
  }
  return command;
}

function readCommitWithRequest(r: ByteReader): TxnCommand {
  const startTs = r.varint();
  const commitTs = r.varint();
  const primary = r.string();
  const keys = readKeys(r);
  const id = r.string();
  const deleted = r.varint();
  const at = r.position;
  const succeeded = r.u8();
  if (succeeded > 2) throw new FormatError(`a request's outcome of ${succeeded} at byte ${at}`);
  const request = { id, deleted, ...(succeeded === 0 ? {} : { succeeded: succeeded === 2 }) };
  return { type: "commit", startTs, commitTs, keys, primary, request };
}

export function writeMutations(w: ByteWriter, mutations: readonly Mutation[]): void {
  w.varint(mutations.length);
  for (const mutation of mutations) writeMutation(w, mutation);
}

export function readMutations(r: ByteReader): Mutation[] {
  return Array.from({ length: count(r) }, () => readMutation(r));
}

/** string key · u8 kind · what the kind carries (the mutations' layout, one of them). */
export function writeMutation(w: ByteWriter, { key, value, expiresAtMs }: Mutation): void {
  w.string(key);
  if (expiresAtMs !== undefined && value instanceof Uint8Array) w.u8(PUT_WITH_TTL).bytes(value).varint(expiresAtMs);
  else writeMutationValue(w, value);
}

export function readMutation(r: ByteReader): Mutation {
  const key = r.string();
  const at = r.position;
  const kind = r.u8();
  if (kind === PUT_WITH_TTL) return { key, value: r.bytesCopy(), expiresAtMs: r.varint() };
  return { key, value: valueOfKind(r, kind, at) };
}

/** u8 kind (1 put: bytes value; 2 delete; 3 lock only): a mutation's value, or a lock's. */
export function writeMutationValue(w: ByteWriter, value: MutationValue): void {
  if (value === null) w.u8(DELETE);
  else if (value === LOCK_ONLY) w.u8(LOCK);
  else w.u8(PUT).bytes(value);
}

export function readMutationValue(r: ByteReader): MutationValue {
  const at = r.position;
  return valueOfKind(r, r.u8(), at);
}

/** The value of a mutation of kind `kind` (read at byte `at`), its bytes read from `r` for a put. */
function valueOfKind(r: ByteReader, kind: number, at: number): MutationValue {
  if (kind === DELETE) return null;
  if (kind === LOCK) return LOCK_ONLY;
  if (kind !== PUT) throw new FormatError(`unknown mutation kind ${kind} at byte ${at}`);
  return r.bytesCopy();
}

export function writeKeys(w: ByteWriter, keys: readonly string[]): void {
  w.varint(keys.length);
  for (const key of keys) w.string(key);
}

export function readKeys(r: ByteReader): string[] {
  return Array.from({ length: count(r) }, () => r.string());
}

/**
 * A count of items each `itemBytes` long at least (a string: 4), read before them: more than the
 * bytes left could hold is damage.
 */
export function count(r: ByteReader, itemBytes = 4): number {
  const at = r.position;
  const n = r.varint();
  if (n > r.remaining / itemBytes)
    throw new FormatError(`a count of ${n} at byte ${at}, past the ${r.remaining} bytes left`);
  return n;
}

export function flag(r: ByteReader): boolean {
  const at = r.position;
  const value = r.u8();
  if (value > 1) throw new FormatError(`a flag of ${value} at byte ${at}`);
  return value === 1;
}

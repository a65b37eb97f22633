/**
 * The commands the log carries and the state machine applies. Each committed entry is one command
 * at one revision; applying it is a pure function of the store's state (so that a replay, or
 * another replica, reaches exactly the same state).
 */

/** One write: a value to put (with an optional wall-clock deadline), or `null` to delete the key. */
export interface WriteOp {
  readonly key: string;
  readonly value: Uint8Array | null;
  /** Unix ms after which the key is to be deleted (TTL); absent: never. */
  readonly expiresAtMs?: number;
}

export type CompareTarget = "value" | "mod_revision" | "create_revision" | "version" | "exists";
export type CompareOp = "==" | "!=" | "<" | ">";

/**
 * One clause of a transaction, on a key's state at the revision the transaction applies at.
 * `value` compares bytes (lexicographically for < and >); the revision and version targets compare
 * `number` (0 for a missing key); `exists` compares `number` 1 (exists) or 0 (missing) with == or !=.
 */
export interface Compare {
  readonly key: string;
  readonly target: CompareTarget;
  readonly op: CompareOp;
  readonly value?: Uint8Array;
  readonly number?: number;
}

/** A transaction operation: a read, or a write. */
export type TxnOp = { readonly get: string } | WriteOp;

export interface TxnCommand {
  readonly compares: readonly Compare[];
  readonly success: readonly TxnOp[];
  readonly failure: readonly TxnOp[];
}

/** A batch: what Set and Del send. */
export interface BatchCommand {
  readonly kind?: "batch";
  readonly ops: readonly WriteOp[];
}

export type Command =
  | BatchCommand
  | { readonly kind: "txn"; readonly txn: TxnCommand }
  /** Makes every revision below `compactTo` unreadable and lets GC reclaim it. */
  | { readonly kind: "compact"; readonly compactTo: number }
  /** TTL expiry: deletes each key whose newest version is still the one written at `revision`. */
  | { readonly kind: "expire"; readonly keys: readonly { readonly key: string; readonly revision: number }[] };

/** A command as the log carries it: committed whole at one revision. */
export type LogEntry = { readonly revision: number } & Command;

/**
 * Writes committed late, at a revision at or below the store's current one: a Percolator
 * secondary committed at its transaction's commit timestamp after the partition went past it
 * (WriteView.applyLate says when the store takes one).
 */
export interface LateEntry {
  readonly revision: number;
  readonly ops: readonly WriteOp[];
}

/** A key's state as reads return it. */
export interface KeyRecord {
  readonly key: string;
  /** Undefined: the key does not exist. */
  readonly value: Uint8Array | undefined;
  /** Revision of the last write (0 for a missing key). */
  readonly modRevision: number;
  readonly createRevision: number;
  readonly version: number;
  readonly expiresAtMs?: number;
}

/** What applying an entry did. */
export interface ApplyResult {
  readonly revision: number;
  /** Keys that existed before the entry and were deleted by it. */
  readonly deleted: number;
  /** For a transaction: whether its compares held (the success branch ran). */
  readonly succeeded?: boolean;
  /** For a transaction: the records its get operations read, in order. */
  readonly reads?: readonly KeyRecord[];
  /**
   * The write's request id had been applied before: nothing was applied now, and the other fields
   * are the first write's (no reads).
   */
  readonly duplicate?: boolean;
}

export function isWrite(op: TxnOp): op is WriteOp {
  return !("get" in op);
}

/** What a record costs in a response: its key and value bytes (UTF-16 units stand for the key's bytes). */
export function recordBytes(record: { key: string; value: Uint8Array | undefined }): number {
  return record.key.length + (record.value?.byteLength ?? 0);
}

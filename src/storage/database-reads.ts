import { HomeKvError } from "../errors.ts";
import type { ReadView, ScanOptions, ScanPage } from "./mvcc/store.ts";
import { isWrite, type KeyRecord, recordBytes, type TxnCommand, type TxnOp } from "./ops.ts";

/**
 * What the server reads through: the database's read view. Every call is answered from the last
 * applied revision (or the one named) and never waits for a write. It is the one seam reads cross:
 * in a cluster a linearizable read first waits for the log (ReadIndex), then reads here.
 */
export interface DatabaseReadView {
  /** Revision of the last applied command. */
  readonly revision: number;
  /** Revisions below this one are compacted (unreadable). */
  readonly compactedRevision: number;
  /** Every key at one revision (default: the current one), in the order given. */
  read(keys: readonly string[], revision?: number): { revision: number; records: KeyRecord[] };
  /**
   * What reading `keys` (repeats included) at `revision` would put in a response, key and value
   * bytes as `recordBytes` counts them, measured without reading a value out.
   */
  readBytes(keys: readonly string[], revision?: number): number;
  /** Live keys of a range as of `options.revision`; see `ScanOptions`. */
  scan(options: ScanOptions): ScanPage;
}

export interface TxnPlan {
  readonly revision: number;
  readonly succeeded: boolean;
  /** The branch's gets, in order, repeats included. */
  readonly gets: readonly string[];
  readonly readBytes: number;
}

/**
 * What reading `keys` (repeats included) at `revision` would put in a response, key and value bytes
 * as `recordBytes` counts them, measured without reading a value out.
 */
export function readBytes(store: ReadView, keys: readonly string[], revision: number): number {
  const sizes = sizesByKey(store, keys, revision);
  let bytes = 0;
  for (const key of keys) bytes += recordBytes({ key, value: undefined }) + sizes.get(key)!;
  return bytes;
}

/**
 * Where a transaction stands at the current revision: the branch its compares pick, the keys that
 * branch reads, and the bytes those reads would return if it applied now (each get sees the writes
 * before it in the branch).
 */
export function planTxn(store: ReadView, txn: TxnCommand): TxnPlan {
  const revision = store.revision;
  const succeeded = store.evaluate(txn.compares, revision);
  const ops = succeeded ? txn.success : txn.failure;
  const gets = ops.flatMap((op) => ("get" in op ? [op.get] : []));
  const current = sizesByKey(store, gets, revision);
  const written = new Map<string, number>();
  let bytes = 0;
  for (const op of ops) {
    if (isWrite(op)) written.set(op.key, op.value?.byteLength ?? 0);
    else bytes += recordBytes({ key: op.get, value: undefined }) + (written.get(op.get) ?? current.get(op.get)!);
  }
  return { revision, succeeded, gets, readBytes: bytes };
}

function sizesByKey(store: ReadView, keys: readonly string[], revision: number): Map<string, number> {
  const unique = [...new Set(keys)];
  const sizes = store.valueBytes(unique, revision);
  return new Map(unique.map((key, i) => [key, sizes[i]!]));
}

/** The compaction a request may ask for: above the compacted revision, at most the current one. */
export function checkCompactTarget(revision: number, store: ReadView): void {
  const current = store.revision;
  if (revision > current) {
    throw new HomeKvError("E_FUTURE_REVISION", `revision ${revision} is in the future (current ${current})`);
  }
  if (revision <= store.compactedRevision) {
    throw new HomeKvError(
      "E_COMPACTED",
      `revision ${revision} is already compacted (compacted revision ${store.compactedRevision})`,
    );
  }
}

/** Whether either branch writes (a transaction that does not needs no commit). */
export function txnWrites(txn: TxnCommand): boolean {
  const any = (ops: readonly TxnOp[]) => ops.some(isWrite);
  return any(txn.success) || any(txn.failure);
}

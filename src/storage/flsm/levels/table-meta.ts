import { compareKeyBytes, type KeyRange } from "../entry.ts";

/**
 * What the level set knows of a table: enough to route reads and pick compactions without opening
 * it. Plain data, so it crosses to a Worker and into the manifest as it is.
 */
export interface TableMeta {
  /** The table's file number (`<number>.sst`); numbers are never reused. */
  readonly number: number;
  readonly sizeBytes: number;
  /** Its first and last key (inclusive). */
  readonly smallest: Uint8Array;
  readonly largest: Uint8Array;
  /** The lowest and highest revision of its entries. */
  readonly minRevision: number;
  readonly maxRevision: number;
  readonly entries: number;
}

/**
 * Newest first: by highest revision, then by number. Within one guard, tables that share a key come
 * from different compactions, and each compaction into a guard carries versions all newer than the
 * one before (docs/internals/flsm.md, "Guards and compaction"), so this is the order in which a read
 * may stop at the first table holding a version it can see.
 */
export function newestFirst(a: TableMeta, b: TableMeta): number {
  return b.maxRevision - a.maxRevision || b.number - a.number;
}

export function tableHoldsKey(table: TableMeta, key: Uint8Array): boolean {
  return compareKeyBytes(table.smallest, key) <= 0 && compareKeyBytes(key, table.largest) <= 0;
}

export function tableOverlapsRange(table: TableMeta, range: KeyRange): boolean {
  return (
    (range.start === undefined || compareKeyBytes(table.largest, range.start) >= 0) &&
    (range.end === undefined || compareKeyBytes(table.smallest, range.end) < 0)
  );
}

/** The keys of [smallest, largest] as a KeyRange: the end is the key right after `largest` in byte order. */
export function inclusiveRange(smallest: Uint8Array, largest: Uint8Array): KeyRange {
  const end = new Uint8Array(largest.length + 1);
  end.set(largest);
  return { start: smallest, end };
}

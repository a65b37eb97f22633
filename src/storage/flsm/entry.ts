import type { Version } from "../mvcc/version-chain.ts";
import type { BloomHash } from "./table/bloom.ts";

/**
 * One version of one key, as every part of the FLSM engine holds it (memtable, tables, compaction).
 * Its internal key is (key, revision); the rest is the version the MVCC store would hold.
 */
export interface Entry extends Version {
  /** The key's UTF-8 bytes. Byte order is the store's key order (code point order, key-order.ts). */
  readonly key: Uint8Array;
}

/** Orders keys by their bytes. */
export function compareKeyBytes(a: Uint8Array, b: Uint8Array): number {
  return Buffer.compare(a, b);
}

/**
 * Internal-key order: keys ascending, and one key's versions newest first, so that the first entry
 * at or after (key, R) is the newest version of the key readable at revision R.
 */
export function compareEntries(a: Entry, b: Entry): number {
  return Buffer.compare(a.key, b.key) || b.revision - a.revision;
}

/** Keys of [start, end); a missing bound is open. */
export interface KeyRange {
  readonly start?: Uint8Array;
  readonly end?: Uint8Array;
}

/**
 * What the memtable, a frozen memtable and a table have in common: entries sorted in internal-key
 * order. Reads are synchronous (tables read through `ReadFile.readAt`), like every read of the store.
 */
export interface SortedRun {
  /**
   * The newest version of `key` with a revision at or below `revision`; undefined when the run
   * holds none. `hash`, when given, is the key's Bloom hash (table/bloom.ts): a read that asks many
   * tables hashes the key once.
   */
  get(key: Uint8Array, revision: number, hash?: BloomHash): Entry | undefined;
  /**
   * The entries of keys in `range`, in internal-key order; `reverse` gives exactly the opposite order
   * (keys descending, and one key's versions oldest first).
   */
  entries(range: KeyRange, reverse?: boolean): Iterator<Entry>;
}

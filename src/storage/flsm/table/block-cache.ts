import { assert } from "../../../errors.ts";
import type { Block } from "./block.ts";

/**
 * The data blocks read lately, shared by every table reader of a store and bounded in bytes: least
 * recently used out first. A block is keyed by (table, offset), where the table is a number this
 * cache gave its reader at open: unique for the cache's life, so two files never share a key.
 * Blocks are kept checked and decoded, ready to search.
 */
export class BlockCache {
  hits = 0;
  misses = 0;
  /** In use order, least recent first (a Map iterates in insertion order; a hit re-inserts). */
  private readonly blocks = new Map<string, Block>();
  /** The offsets each table has in `blocks`, so that a closed table's go at once. */
  private readonly offsets = new Map<number, Set<number>>();
  private usedBytes = 0;
  private nextTable = 1;

  constructor(readonly capacityBytes: number) {
    assert(Number.isSafeInteger(capacityBytes) && capacityBytes >= 0, () => `block cache of ${capacityBytes} bytes`);
  }

  /** A table number for a reader opening. */
  newTable(): number {
    return this.nextTable++;
  }

  get bytes(): number {
    return this.usedBytes;
  }

  get size(): number {
    return this.blocks.size;
  }

  get(table: number, offset: number): Block | undefined {
    const key = cacheKey(table, offset);
    const block = this.blocks.get(key);
    if (block === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.blocks.delete(key);
    this.blocks.set(key, block);
    return block;
  }

  /** Keeps a block just read; older blocks leave until the cache fits (a block larger than it is not kept). */
  put(table: number, offset: number, block: Block): void {
    const key = cacheKey(table, offset);
    const bytes = block.bytes.byteLength;
    if (bytes > this.capacityBytes || this.blocks.has(key)) return;
    this.blocks.set(key, block);
    this.usedBytes += bytes;
    let held = this.offsets.get(table);
    if (held === undefined) this.offsets.set(table, (held = new Set()));
    held.add(offset);
    // Bounded: each round removes one of the blocks.
    for (const [oldest] of this.blocks) {
      if (this.usedBytes <= this.capacityBytes) break;
      const [evictedTable, evictedOffset] = oldest.split(":").map(Number) as [number, number];
      this.remove(evictedTable, evictedOffset);
    }
  }

  /**
   * Drops every block of `table` (its reader closed: a compaction deleted the file). Otherwise they
   * would stay until evicted, and a store that compacts often would fill its cache with the blocks
   * of tables that are gone.
   */
  forget(table: number): void {
    for (const offset of this.offsets.get(table) ?? []) this.remove(table, offset);
  }

  private remove(table: number, offset: number): void {
    const key = cacheKey(table, offset);
    const block = this.blocks.get(key);
    if (block === undefined) return;
    this.blocks.delete(key);
    this.usedBytes -= block.bytes.byteLength;
    const held = this.offsets.get(table);
    held?.delete(offset);
    if (held?.size === 0) this.offsets.delete(table);
  }
}

function cacheKey(table: number, offset: number): string {
  return `${table}:${offset}`;
}

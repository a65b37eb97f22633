import { assert } from "../../../errors.ts";
import type { Block } from "./block.ts";

/**
 * The data blocks read lately, shared by every table reader of a store and bounded in bytes: least
 * recently used out first. A block is keyed by (table, offset), where the table is a number this
 * cache gave its reader at open: unique for the cache's life, so two files never share a key.
 * Blocks are kept checked and decoded, ready to search.
 */
/** A cached block with where it came from, so that the least recent one can be found and evicted. */
interface Cached {
  readonly table: number;
  readonly offset: number;
  readonly block: Block;
}

export class BlockCache {
  hits = 0;
  misses = 0;
  /** Per table, its cached blocks by offset: a lookup is two numeric map lookups, no key to build. */
  private readonly tables = new Map<number, Map<number, Cached>>();
  /** In use order, least recent first (a Set iterates in insertion order; a hit re-inserts). */
  private readonly recency = new Set<Cached>();
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
    return this.recency.size;
  }

  get(table: number, offset: number): Block | undefined {
    const cached = this.tables.get(table)?.get(offset);
    if (cached === undefined) {
      this.misses++;
      return undefined;
    }
    this.hits++;
    this.recency.delete(cached);
    this.recency.add(cached);
    return cached.block;
  }

  /** Keeps a block just read; older blocks leave until the cache fits (a block larger than it is not kept). */
  put(table: number, offset: number, block: Block): void {
    const bytes = block.bytes.byteLength;
    let blocks = this.tables.get(table);
    if (bytes > this.capacityBytes || blocks?.has(offset)) return;
    if (blocks === undefined) this.tables.set(table, (blocks = new Map()));
    const cached = { table, offset, block };
    blocks.set(offset, cached);
    this.recency.add(cached);
    this.usedBytes += bytes;
    // Bounded: each round removes one of the blocks.
    for (const oldest of this.recency) {
      if (this.usedBytes <= this.capacityBytes) break;
      this.remove(oldest);
    }
  }

  /**
   * Drops every block of `table` (its reader closed: a compaction deleted the file). Otherwise they
   * would stay until evicted, and a store that compacts often would fill its cache with the blocks
   * of tables that are gone.
   */
  forget(table: number): void {
    for (const cached of this.tables.get(table)?.values() ?? []) this.remove(cached);
  }

  private remove(cached: Cached): void {
    const blocks = this.tables.get(cached.table);
    if (blocks?.get(cached.offset) !== cached) return;
    blocks.delete(cached.offset);
    if (blocks.size === 0) this.tables.delete(cached.table);
    this.recency.delete(cached);
    this.usedBytes -= cached.block.bytes.byteLength;
  }
}

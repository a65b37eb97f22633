import { assert } from "../../../errors.ts";
import { Block } from "./block.ts";

/** A cached block: where its bytes lie in the ring, in the ring's ever-growing address space. */
interface Cached {
  readonly table: number;
  readonly offset: number;
  /** Where its bytes start in the ring's virtual addresses (grows forever; the ring offset is start % capacity). */
  readonly start: number;
  readonly block: Block;
  /** Forgotten (its table closed, or moved to the head): its bytes count for nothing any more. */
  gone: boolean;
}

/**
 * The ring is made of segments of at most this many bytes (the last one shorter), each one typed
 * array allocated at its first use and let go when the ring's room shrinks past it (reserve): so
 * that what the cache gives back leaves the process's memory. A block never spans two segments.
 */
const SEGMENT_BYTES = 16 * 1024 * 1024;
/** The share of the capacity the ring keeps for blocks whatever is reserved: a cache that holds nothing makes every read a file read. */
const LEAST_ROOM_SHARE = 4;

/** A block larger than this share of the cache is not kept (one block must not empty it). */
const LARGEST_SHARE = 4;
/**
 * A hit on a block this close (share of the capacity) to being overwritten moves it to the head.
 * A narrower window copies less under uniform reads, where a second chance gains nothing.
 */
const SECOND_CHANCE_SHARE = 8;

/**
 * The data blocks read lately, shared by every table reader of a store, in one ring of
 * `capacityBytes` (segments allocated at first use, pages made resident as first written): a block
 * read from a file is read straight into the ring at its head, and the oldest blocks are
 * overwritten as the head comes round. Blocks read one by one into buffers of their own made the
 * memory churn of a loaded engine: the garbage of evicted blocks waited for collections, and the
 * allocator kept what they freed (at 4 M sets, 256 MiB of cache cost 835 MiB of RSS against a 16
 * MiB cache; the ring costs what it holds).
 *
 * Eviction is first in, first out, with a second chance: a hit on a block the head will reach
 * within an eighth of the ring copies it to the head, so blocks in use stay as under LRU. A block
 * is keyed by (table, offset), the table a number this cache gave its reader at open, unique for
 * the cache's life.
 *
 * A Block from the cache is a view of the ring: it is read synchronously (a point read), and a walk
 * that yields between entries copies it first (Block.entries), since the ring may move on.
 */
export class BlockCache {
  hits = 0;
  misses = 0;
  /** The ring's segments, made as the head first reaches each (a hole: not made, or let go). */
  private readonly segments: (Uint8Array | undefined)[] = [];
  /** Per table, its cached blocks by offset. */
  private readonly tables = new Map<number, Map<number, Cached>>();
  /** In ring order, oldest first, from `first` on (gone ones skipped). */
  private order: Cached[] = [];
  private first = 0;
  /** The ring's head in virtual addresses: the next block starts here. */
  private head = 0;
  private usedBytes = 0;
  private nextTable = 1;
  /** How far into the ring blocks go: the capacity less what is reserved (reserve). */
  private room: number;

  /** `segmentBytes`: the ring's segments' size (tests make them small to reach their edges). */
  constructor(
    readonly capacityBytes: number,
    private readonly segmentBytes = SEGMENT_BYTES,
  ) {
    assert(Number.isSafeInteger(capacityBytes) && capacityBytes >= 0, () => `block cache of ${capacityBytes} bytes`);
    assert(
      Number.isSafeInteger(segmentBytes) && segmentBytes > 0,
      () => `block cache segments of ${segmentBytes} bytes`,
    );
    this.room = capacityBytes;
  }

  /** The bytes of the ring blocks may take now: the capacity less what is reserved. */
  get roomBytes(): number {
    return this.room;
  }

  /** The bytes of the ring's segments allocated now. */
  get allocatedBytes(): number {
    return this.segments.reduce((sum, segment) => sum + (segment?.byteLength ?? 0), 0);
  }

  /**
   * Counts `bytes` held beside the cache against its capacity (the open tables' block indexes and
   * Bloom filters, which grow with the data, as RocksDB charges them to its block cache when asked):
   * the ring's room becomes the capacity less them, but never under a quarter of it. Blocks past a
   * smaller room are dropped, and the segments wholly past it let go.
   */
  reserve(bytes: number): void {
    assert(Number.isSafeInteger(bytes) && bytes >= 0, () => `${bytes} bytes reserved in a block cache`);
    const room = Math.max(Math.ceil(this.capacityBytes / LEAST_ROOM_SHARE), this.capacityBytes - bytes);
    const shrinks = room < this.room;
    this.room = room;
    if (!shrinks) return;
    // What a cache of this room would not hold goes: blocks past it, and blocks too large for it.
    for (let i = this.first; i < this.order.length; i++) {
      const cached = this.order[i]!;
      const size = cached.block.bytes.byteLength;
      if ((cached.start % this.capacityBytes) + size > room || size > room / LARGEST_SHARE) this.drop(cached);
    }
    // Dropped blocks are views of the segments let go: out of the order too, or it would keep them.
    this.order = this.order.slice(this.first).filter((cached) => !cached.gone);
    this.first = 0;
    for (let i = Math.ceil(room / this.segmentBytes); i < this.segments.length; i++) this.segments[i] = undefined;
  }

  /** A table number for a reader opening. */
  newTable(): number {
    return this.nextTable++;
  }

  get bytes(): number {
    return this.usedBytes;
  }

  get size(): number {
    let live = 0;
    for (const blocks of this.tables.values()) live += blocks.size;
    return live;
  }

  /**
   * The block at `offset` of `table`: from the cache, or `read` into bytes the cache gives (the
   * ring's, or a buffer of its own for a block too large to keep) and decoded there (damage names
   * `path`). A block that fails to read or decode is not kept.
   */
  load(table: number, offset: number, size: number, read: (into: Uint8Array) => void, path: string): Block {
    const cached = this.tables.get(table)?.get(offset);
    if (cached !== undefined) {
      this.hits++;
      return this.touched(cached).block;
    }
    this.misses++;
    if (size > Math.min(this.room / LARGEST_SHARE, this.segmentBytes)) {
      const bytes = new Uint8Array(size);
      read(bytes);
      return Block.decode(bytes, path, offset);
    }
    const start = this.claim(size);
    const bytes = this.bytesAt(start, size);
    read(bytes);
    const block = Block.decode(bytes, path, offset);
    this.keep({ table, offset, start, block, gone: false });
    return block;
  }

  /** Whether the cache holds the block (tests). */
  holds(table: number, offset: number): boolean {
    return this.tables.get(table)?.has(offset) ?? false;
  }

  /**
   * Drops every block of `table` (its reader closed: a compaction deleted the file), so that they
   * count for nothing; their bytes are overwritten when the head comes round.
   */
  forget(table: number): void {
    for (const cached of this.tables.get(table)?.values() ?? []) this.drop(cached);
  }

  /** A hit: a block about to be overwritten moves to the head (its second chance). */
  private touched(cached: Cached): Cached {
    // How far the head goes before it overwrites the block, within the room: to it in the lap
    // before the head's, or round the room's end to it in the head's own.
    const at = this.head % this.capacityBytes;
    const offset = cached.start % this.capacityBytes;
    const ahead = offset >= at ? offset - at : Math.max(0, this.room - at) + offset;
    if (ahead >= this.room / SECOND_CHANCE_SHARE) return cached;
    // Claiming only keeps books: the old bytes are still there to copy from (set copies through a
    // clone should the two ranges overlap).
    const bytes = cached.block.bytes;
    this.drop(cached);
    const start = this.claim(bytes.byteLength);
    const into = this.bytesAt(start, bytes.byteLength);
    into.set(bytes);
    const moved = { ...cached, start, block: cached.block.over(into), gone: false };
    this.keep(moved);
    return moved;
  }

  /** Room for `size` bytes at the head: the blocks it overwrites leave. Returns its virtual start. */
  private claim(size: number): number {
    // A block never spans two segments (nor goes past the room): the rest of a segment too short
    // for it is skipped, and past the room the head goes round to the ring's start. Bounded: a
    // block is at most a segment and a quarter of the room long.
    for (;;) {
      const at = this.head % this.capacityBytes;
      if (at >= this.room) {
        this.head += this.capacityBytes - at;
        continue;
      }
      const segmentEnd = Math.min(this.room, (Math.floor(at / this.segmentBytes) + 1) * this.segmentBytes);
      if (at + size <= segmentEnd) break;
      this.head += segmentEnd - at;
    }
    const start = this.head;
    this.head += size;
    // Bounded: each round removes the oldest block.
    while (this.first < this.order.length && this.order[this.first]!.start < this.head - this.capacityBytes)
      this.drop(this.order[this.first++]!);
    if (this.first > 1024 && this.first * 2 > this.order.length) {
      this.order = this.order.slice(this.first);
      this.first = 0;
    }
    return start;
  }

  /** The ring's bytes from virtual address `start` (claimed: within one segment). */
  private bytesAt(start: number, size: number): Uint8Array {
    const at = start % this.capacityBytes;
    const index = Math.floor(at / this.segmentBytes);
    const segment = (this.segments[index] ??= new Uint8Array(
      Math.min(this.segmentBytes, this.capacityBytes - index * this.segmentBytes),
    ));
    const offset = at - index * this.segmentBytes;
    return segment.subarray(offset, offset + size);
  }

  private keep(cached: Cached): void {
    let blocks = this.tables.get(cached.table);
    if (blocks === undefined) this.tables.set(cached.table, (blocks = new Map()));
    blocks.set(cached.offset, cached);
    this.order.push(cached);
    this.usedBytes += cached.block.bytes.byteLength;
  }

  private drop(cached: Cached): void {
    if (cached.gone) return;
    cached.gone = true;
    this.usedBytes -= cached.block.bytes.byteLength;
    const blocks = this.tables.get(cached.table);
    blocks?.delete(cached.offset);
    if (blocks?.size === 0) this.tables.delete(cached.table);
  }
}

import { assert } from "../../../errors.ts";

/**
 * Values packed into large byte slabs instead of one Uint8Array each: in JavaScriptCore a 100-byte
 * Uint8Array costs about 170 bytes of heap (the view object, its buffer, the bytes), and millions of
 * them make every garbage-collector cycle long. Here a value costs its bytes plus an 8-byte header,
 * and the collector sees one object per megabyte.
 *
 * A value is written at the end of the current slab and stays where it is until freed or moved; a
 * read returns a copy. (A view into the slab would be cheaper by a copy, but it would pin the whole
 * megabyte for as long as it lived: a watcher's queue of a thousand small previous values could hold
 * a gigabyte.) Freed values leave holes; a sealed slab (not the current one) whose live bytes fall
 * under half is queued for evacuation: its live values are copied to the current slab and the slab is
 * dropped — into a small pool of spares that new slabs are taken from first, since touching fresh
 * memory costs a page fault per 4 KiB (on this machine, more than the copy). So slabs hold at most
 * about twice the live bytes, plus the spares.
 *
 * Each record is `[owner: int32][length: int32][bytes…]`, 4-byte aligned; `owner` is the slot of the
 * version holding it (the VersionTable), so that evacuation can tell live records from freed ones by
 * asking whether that slot still points here (`isLive`), and move them (`moved`).
 *
 * A location (`loc`) is `slab * 2^21 + offset`: one number, exact in a double. A value larger than a
 * quarter slab gets a slab of its own, freed whole with it.
 */
export const SLAB_BYTES = 1 << 20;
/** Dropped slabs kept for reuse. */
const SPARES_MAX = 4;
const LOC_SLAB = 2 ** 21;
const HEADER_BYTES = 8;

/** Who holds each record: a version slot for values, a key entry for keys. */
export interface SlabOwners {
  /** Whether `owner` still holds the record at `loc`. */
  isLive(owner: number, loc: number): boolean;
  /** The record of `owner` is now at `loc`. */
  moved(owner: number, loc: number): void;
}

export class ValueSlabs {
  private readonly slabs: (Uint8Array | undefined)[] = [];
  private readonly words: (Int32Array | undefined)[] = [];
  /** Live record bytes per slab (headers and padding included). */
  private readonly liveBytes: number[] = [];
  private readonly freeIds: number[] = [];
  private readonly evacuating: number[] = [];
  private readonly queued = new Set<number>();
  private readonly spares: Uint8Array[] = [];
  private current = -1;
  private used = 0;
  /** Bytes of all slabs, live or not, spares too: what the slabs cost in memory. */
  allocatedBytes = 0;

  constructor(
    private readonly owners: SlabOwners,
    private readonly slabBytes = SLAB_BYTES,
  ) {
    assert(
      slabBytes >= 64 && slabBytes % 4 === 0 && slabBytes <= LOC_SLAB,
      "slab size must be a multiple of 4 up to 2 MiB",
    );
  }

  /** Stores a copy of `value` for `owner`; returns its location. */
  put(value: Uint8Array, owner: number): number {
    const loc = this.reserve(value.byteLength, owner);
    this.slabOf(loc).set(value, this.startOf(loc));
    return loc;
  }

  /**
   * Stores a copy of `from[start, start + length)` for `owner`: a value read in place from a file,
   * copied byte by byte, since a view to copy it with would be an object made per value.
   */
  putFrom(from: Uint8Array, start: number, length: number, owner: number): number {
    const loc = this.reserve(length, owner);
    const slab = this.slabOf(loc);
    const at = this.startOf(loc) - start;
    for (let i = start; i < start + length; i++) slab[at + i] = from[i]!;
    return loc;
  }

  /**
   * Room for a record of `length` bytes for `owner`; returns its location, where the caller writes
   * the bytes (at `startOf(loc)` in `slabOf(loc)`): for bytes that are not a Uint8Array of their own,
   * so that none need be made (a key encoded from a string, a value read in place from a file).
   */
  reserve(length: number, owner: number): number {
    const size = recordSize(length);
    if (size > this.slabBytes / 4) return this.claim(this.newSlab(size), 0, length, owner);
    if (this.current < 0 || this.used + size > this.slabBytes) {
      if (this.current >= 0) this.seal(this.current);
      this.current = this.newSlab(this.slabBytes);
      this.used = 0;
    }
    const offset = this.used;
    this.used += size;
    return this.claim(this.current, offset, length, owner);
  }

  /** A copy of the value at `loc`. */
  get(loc: number): Uint8Array {
    const slab = Math.floor(loc / LOC_SLAB);
    const offset = loc - slab * LOC_SLAB;
    const length = this.words[slab]![(offset >> 2) + 1]!;
    return this.slabs[slab]!.slice(offset + HEADER_BYTES, offset + HEADER_BYTES + length);
  }

  /**
   * The slab holding the value at `loc` and where its bytes start in it: for reading them in place,
   * without the copy `get` makes (a key compared on every lookup).
   */
  slabOf(loc: number): Uint8Array {
    return this.slabs[Math.floor(loc / LOC_SLAB)]!;
  }

  startOf(loc: number): number {
    // An int32, without a floating-point remainder: `put` hands it to `set` on every value written.
    return (loc - Math.floor(loc / LOC_SLAB) * LOC_SLAB + HEADER_BYTES) | 0;
  }

  byteLength(loc: number): number {
    const slab = Math.floor(loc / LOC_SLAB);
    return this.words[slab]![((loc - slab * LOC_SLAB) >> 2) + 1]!;
  }

  /** The value at `loc` is no longer needed. */
  free(loc: number): void {
    const slab = Math.floor(loc / LOC_SLAB);
    this.liveBytes[slab]! -= recordSize(this.byteLength(loc));
    if (slab !== this.current) this.settle(slab);
  }

  /** Whether sealed slabs wait to be evacuated. */
  get evacuationPending(): boolean {
    return this.queued.size > 0;
  }

  /** Evacuates one queued slab (at most a slab's worth of copying); returns the records moved. */
  evacuateOne(): number {
    let slab = this.evacuating.shift();
    // Skips slabs not queued any more: emptied and dropped meanwhile (the id may serve a new slab).
    while (slab !== undefined && !this.queued.delete(slab)) slab = this.evacuating.shift();
    if (slab === undefined) return 0;
    const bytes = this.slabs[slab]!;
    const words = this.words[slab]!;
    const end = this.slabBytes;
    let moved = 0;
    for (let offset = 0; offset + HEADER_BYTES <= end; ) {
      const owner = words[offset >> 2]!;
      const length = words[(offset >> 2) + 1]!;
      if (owner < 0) break; // the unused tail
      const loc = slab * LOC_SLAB + offset;
      if (this.owners.isLive(owner, loc)) {
        this.owners.moved(
          owner,
          this.put(bytes.subarray(offset + HEADER_BYTES, offset + HEADER_BYTES + length), owner),
        );
        moved++;
      }
      offset += recordSize(length);
    }
    this.drop(slab);
    return moved;
  }

  private claim(slab: number, offset: number, length: number, owner: number): number {
    const words = this.words[slab]!;
    words[offset >> 2] = owner;
    words[(offset >> 2) + 1] = length;
    this.liveBytes[slab]! += recordSize(length);
    return slab * LOC_SLAB + offset;
  }

  private newSlab(bytes: number): number {
    const id = this.freeIds.pop() ?? this.slabs.length;
    const spare = bytes === this.slabBytes ? this.spares.pop() : undefined;
    const slab = spare ?? new Uint8Array(bytes);
    this.slabs[id] = slab;
    const words = new Int32Array(slab.buffer, 0, bytes >> 2);
    words.fill(-1, 0, Math.min(words.length, 2)); // an empty slab reads as its unused tail
    this.words[id] = words;
    this.liveBytes[id] = 0;
    if (spare === undefined) this.allocatedBytes += bytes;
    return id;
  }

  /** The slab is full: mark where its records end, and queue it if it is already half empty. */
  private seal(slab: number): void {
    if (this.used + HEADER_BYTES <= this.slabBytes) this.words[slab]![this.used >> 2] = -1;
    this.settle(slab);
  }

  /** A sealed slab with nothing live is dropped; one under half live is queued for evacuation. */
  private settle(slab: number): void {
    const live = this.liveBytes[slab]!;
    if (live === 0) this.drop(slab);
    else if (live < this.slabBytes / 2 && !this.queued.has(slab)) {
      this.queued.add(slab);
      this.evacuating.push(slab);
    }
  }

  private drop(slab: number): void {
    const bytes = this.slabs[slab]!;
    if (bytes.byteLength === this.slabBytes && this.spares.length < SPARES_MAX) this.spares.push(bytes);
    else this.allocatedBytes -= bytes.byteLength;
    this.slabs[slab] = undefined;
    this.words[slab] = undefined;
    this.liveBytes[slab] = 0;
    this.queued.delete(slab);
    this.freeIds.push(slab);
  }
}

function recordSize(length: number): number {
  return HEADER_BYTES + ((length + 3) & ~3);
}

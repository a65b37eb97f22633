import { ChunkedRows } from "./chunked-rows.ts";
import { IdHashTable } from "./id-hash-table.ts";
import {
  asciiStored,
  compareStored,
  compareStoredAscii,
  decodeStored,
  equalsStored,
  isAscii,
  storedLength,
  writeStored,
  writeStoredAscii,
} from "./key-bytes.ts";
import { SortedLeaves } from "./sorted-leaves.ts";
import { ValueSlabs } from "./value-slabs.ts";
import { NONE } from "./version-table.ts";

/**
 * The keys of the store, each an entry (an id) holding the slot of its newest version and its key,
 * stored as bytes in slabs (key-bytes.ts; so the garbage collector has no object at all to trace
 * per key), found two ways, both lean on memory:
 *
 * - by key, through a hash table of ids (id-hash-table.ts): O(1) at any size, about 16 bytes a key
 *   where a Map entry costs some 60;
 * - in key order, through leaves of ids (sorted-leaves.ts).
 *
 * Keys are index keys (key-order.ts): native string order is key order.
 */

export class KeyIndex {
  /** Where each entry's key is in `keyBytes` (NaN: none). */
  private readonly keyLocs: ChunkedRows;
  private readonly keyBytes: ValueSlabs;
  private readonly heads: ChunkedRows;
  private nextId = 0;
  private readonly freeIds: number[] = [];
  private readonly byHash: IdHashTable;
  private readonly order: SortedLeaves;

  /**
   * `leafMax`: ids a leaf of the key order holds; `chunkBits`: log2 of the entries a chunk of the
   * per-entry columns holds (the hash table starts with twice as many slots).
   */
  constructor(leafMax?: number, chunkBits = 14, slabBytes?: number) {
    this.keyLocs = new ChunkedRows((length) => new Float64Array(length).fill(Number.NaN), chunkBits);
    this.keyBytes = new ValueSlabs(
      {
        isLive: (id, loc) => this.keyLocs.get(id) === loc,
        moved: (id, loc) => {
          this.keyLocs.set(id, loc);
        },
      },
      slabBytes,
    );
    this.heads = new ChunkedRows((length) => new Int32Array(length), chunkBits);
    this.order = new SortedLeaves(
      (id, key, shared) => this.compareTo(id, key, shared),
      (id) => this.key(id),
      leafMax,
    );
    this.byHash = new IdHashTable((id, key) => this.storedEquals(id, key), 2 << chunkBits);
  }

  /** Live keys. */
  get size(): number {
    return this.byHash.size;
  }

  /** Bytes of the typed arrays, the key order's leaves and the key slabs. */
  get allocatedBytes(): number {
    const arrays = this.keyLocs.byteLength + this.heads.byteLength;
    return arrays + this.byHash.allocatedBytes + this.order.allocatedBytes + this.keyBytes.allocatedBytes;
  }

  /** Moves the keys of one half-empty key slab; true when more wait. */
  evacuateSlab(): boolean {
    this.keyBytes.evacuateOne();
    return this.keyBytes.evacuationPending;
  }

  get evacuationPending(): boolean {
    return this.keyBytes.evacuationPending;
  }

  /** The entry of `key`, or NONE. */
  find(key: string): number {
    return this.byHash.find(hashOf(key), key);
  }

  // Each of the four below finds where entry `id`'s key bytes are for itself: a callback or a result
  // object would be garbage made on every lookup and every step of an ordered insert (see
  // appendAscii), and keeping the place in fields made a new key's put some 0.4 µs slower (of 2.3).

  /** The key of entry `id`, decoded (a new string each time). */
  key(id: number): string {
    const loc = this.keyLocs.get(id);
    const { keyBytes } = this;
    return decodeStored(keyBytes.slabOf(loc), keyBytes.startOf(loc), keyBytes.byteLength(loc));
  }

  /** The key of entry `id` as UTF-8 bytes (a copy) when it is ASCII; undefined otherwise. */
  asciiKey(id: number): Uint8Array | undefined {
    const loc = this.keyLocs.get(id);
    const { keyBytes } = this;
    return asciiStored(keyBytes.slabOf(loc), keyBytes.startOf(loc), keyBytes.byteLength(loc));
  }

  private storedEquals(id: number, key: string): boolean {
    const loc = this.keyLocs.get(id);
    const { keyBytes } = this;
    return equalsStored(keyBytes.slabOf(loc), keyBytes.startOf(loc), keyBytes.byteLength(loc), key);
  }

  /** Entry `id`'s key compared with `key`, both beginning with the same `shared` units: negative when it sorts first. */
  private compareTo(id: number, key: string, shared: number): number {
    const loc = this.keyLocs.get(id);
    const { keyBytes } = this;
    return compareStored(keyBytes.slabOf(loc), keyBytes.startOf(loc), keyBytes.byteLength(loc), key, shared);
  }

  /** Entry `id`'s key compared with the ASCII key `bytes[start, start + count)`. */
  private compareToAscii(id: number, bytes: Uint8Array, start: number, count: number): number {
    const loc = this.keyLocs.get(id);
    const { keyBytes } = this;
    return compareStoredAscii(
      keyBytes.slabOf(loc),
      keyBytes.startOf(loc),
      keyBytes.byteLength(loc),
      bytes,
      start,
      count,
    );
  }

  head(id: number): number {
    return this.heads.get(id);
  }

  setHead(id: number, slot: number): void {
    this.heads.set(id, slot);
  }

  /** Adds `key` (not present) with its newest version `head`; returns its entry. */
  insert(key: string, head: number): number {
    const length = storedLength(key);
    const id = this.newEntry(hashOf(key), length, head);
    const loc = this.keyLocs.get(id);
    writeStored(key, this.keyBytes.slabOf(loc), this.keyBytes.startOf(loc), length);
    this.order.insert(id, key);
    return id;
  }

  /**
   * Adds a key given as ASCII bytes (`bytes[start, start + count)`: what nearly every key read from
   * a checkpoint is) with its newest version `head`, if it sorts after every key present; returns
   * its entry, or NONE (nothing added) when it is not ASCII or does not sort last. A restore in key
   * order adds each key so, making no string, object or view for it: at a million keys, the strings
   * and closures an insert made per key let the collected heap grow to twice what the store holds.
   */
  appendAscii(bytes: Uint8Array, start: number, count: number, head: number): number {
    if (!isAscii(bytes, start, count)) return NONE;
    const last = this.order.last();
    if (last !== NONE && this.compareToAscii(last, bytes, start, count) >= 0) return NONE;
    const id = this.newEntry(hashOfAscii(bytes, start, count), 1 + count, head);
    const loc = this.keyLocs.get(id);
    writeStoredAscii(bytes, start, count, this.keyBytes.slabOf(loc), this.keyBytes.startOf(loc));
    this.order.append(id);
    return id;
  }

  /** A new entry (its key's `storedBytes` reserved, left for the caller to write) with its newest version `head`. */
  private newEntry(hash: number, storedBytes: number, head: number): number {
    const reused = this.freeIds.pop();
    const id = reused ?? this.nextId++;
    if (reused === undefined) {
      this.keyLocs.reserve(id);
      this.heads.reserve(id);
    }
    this.keyLocs.set(id, this.keyBytes.reserve(storedBytes, id));
    this.heads.set(id, head);
    this.byHash.add(id, hash);
    return id;
  }

  /** Takes out the entry `id` (its key has no version left); its id is free for the next key. */
  remove(id: number): void {
    // The key's hash is worked out again rather than kept: a column of them cost 4 bytes a key for
    // the one step, taking a key out, that needs it (the key is decoded here anyway).
    const key = this.key(id);
    this.order.remove(id, key);
    this.byHash.delete(id, hashOf(key));
    this.heads.set(id, NONE);
    this.release(id);
  }

  /** Live entries with keys ≥ `from` (all without it), in ascending key order. */
  forward(from?: string): Generator<number> {
    return this.order.forward(from);
  }

  /** Live entries with keys < `below` (all without it), in descending key order. */
  backward(below?: string): Generator<number> {
    return this.order.backward(below);
  }

  /** Frees entry `id` and its key bytes: nothing names it any more. */
  private release(id: number): void {
    this.keyBytes.free(this.keyLocs.get(id));
    this.keyLocs.set(id, Number.NaN);
    this.freeIds.push(id);
  }
}

/** FNV-1a over the UTF-16 code units. */
function hashOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash | 0; // as the Int32Array keeps it (the empty key's hash is the offset basis, above 2^31)
}

/** hashOf the key whose units are the ASCII bytes `bytes[start, start + count)`. */
function hashOfAscii(bytes: Uint8Array, start: number, count: number): number {
  let hash = 0x811c9dc5;
  for (let i = start; i < start + count; i++) hash = Math.imul(hash ^ bytes[i]!, 0x01000193);
  return hash | 0;
}

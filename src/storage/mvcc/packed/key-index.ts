import { ChunkedRows } from "./chunked-rows.ts";
import { IdHashTable } from "./id-hash-table.ts";
import { compareStored, decodeStored, encodeKey, equalsStored } from "./key-bytes.ts";
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
  private scratch: Uint8Array = new Uint8Array(256);
  private readonly heads: ChunkedRows;
  private readonly hashes: ChunkedRows;
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
    this.hashes = new ChunkedRows((length) => new Int32Array(length), chunkBits);
    this.order = new SortedLeaves(
      (id, key) => this.compareTo(id, key),
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
    const arrays = this.keyLocs.byteLength + this.heads.byteLength + this.hashes.byteLength;
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

  /** The key of entry `id`, decoded (a new string each time). */
  key(id: number): string {
    return this.onStored(id, decodeStored);
  }

  private storedEquals(id: number, key: string): boolean {
    return this.onStored(id, (slab, start, length) => equalsStored(slab, start, length, key));
  }

  /** Entry `id`'s key compared with `key`: negative when it sorts first. */
  private compareTo(id: number, key: string): number {
    return this.onStored(id, (slab, start, length) => compareStored(slab, start, length, key));
  }

  /** `read` applied to where entry `id`'s key bytes are, in place. */
  private onStored<T>(id: number, read: (slab: Uint8Array, start: number, length: number) => T): T {
    const loc = this.keyLocs.get(id);
    const { keyBytes } = this;
    return read(keyBytes.slabOf(loc), keyBytes.startOf(loc), keyBytes.byteLength(loc));
  }

  head(id: number): number {
    return this.heads.get(id);
  }

  setHead(id: number, slot: number): void {
    this.heads.set(id, slot);
  }

  /** Adds `key` (not present) with its newest version `head`; returns its entry. */
  insert(key: string, head: number): number {
    const reused = this.freeIds.pop();
    const id = reused ?? this.nextId++;
    if (reused === undefined) {
      this.keyLocs.reserve(id);
      this.heads.reserve(id);
      this.hashes.reserve(id);
    }
    const hash = hashOf(key);
    const encoded = encodeKey(key, this.scratch);
    this.scratch = encoded.bytes;
    this.keyLocs.set(id, this.keyBytes.put(encoded.bytes.subarray(0, encoded.length), id));
    this.heads.set(id, head);
    this.hashes.set(id, hash);
    this.byHash.add(id, hash);
    this.order.insert(id, key);
    return id;
  }

  /** Takes out the entry `id` (its key has no version left); its id is free for the next key. */
  remove(id: number): void {
    this.order.remove(id, this.key(id));
    this.byHash.delete(id, this.hashes.get(id));
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

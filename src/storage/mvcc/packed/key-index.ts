import { compareStored, decodeStored, encodeKey, equalsStored } from "./key-bytes.ts";
import { SortedLeaves } from "./sorted-leaves.ts";
import { ValueSlabs } from "./value-slabs.ts";
import { NONE } from "./version-table.ts";

/**
 * The keys of the store, each an entry (an id) holding the slot of its newest version and its key,
 * stored as bytes in slabs (key-bytes.ts; so the garbage collector has no object at all to trace
 * per key), found two ways, both lean on memory:
 *
 * - by key, through an open-addressing hash table in an Int32Array (linear probing; each slot a
 *   key's 32-bit hash and its id side by side, so that a probe reads a key's bytes only when the
 *   hash matches, and finds both in one cache line): O(1) at any size, about 16 bytes a key where a
 *   Map entry costs some 60;
 * - in key order, through leaves of ids (sorted-leaves.ts).
 *
 * Keys are index keys (key-order.ts): native string order is key order.
 */
const MAX_LOAD = 0.6;

export class KeyIndex {
  /** Where each entry's key is in `keyBytes` (NaN: none). */
  private keyLocs: Float64Array;
  private readonly keyBytes: ValueSlabs;
  private scratch: Uint8Array = new Uint8Array(256);
  private heads: Int32Array;
  private hashes: Int32Array;
  private nextId = 0;
  private readonly freeIds: number[] = [];
  private table: Int32Array;
  private mask: number;
  private count = 0;
  private readonly order: SortedLeaves;

  /** `leafMax`: ids a leaf of the key order holds; `initialCapacity`: entries before the arrays first grow (a power of two). */
  constructor(leafMax?: number, initialCapacity = 1_024, slabBytes?: number) {
    this.keyLocs = new Float64Array(initialCapacity).fill(Number.NaN);
    this.keyBytes = new ValueSlabs(
      {
        isLive: (id, loc) => this.keyLocs[id] === loc,
        moved: (id, loc) => {
          this.keyLocs[id] = loc;
        },
      },
      slabBytes,
    );
    this.heads = new Int32Array(initialCapacity);
    this.hashes = new Int32Array(initialCapacity);
    this.order = new SortedLeaves(
      (id, key) => this.compareTo(id, key),
      (id) => this.key(id),
      leafMax,
    );
    this.table = new Int32Array(initialCapacity * 4);
    this.mask = initialCapacity * 2 - 1;
  }

  /** Live keys. */
  get size(): number {
    return this.count;
  }

  /** Bytes of the typed arrays, the key order's leaves and the key slabs. */
  get allocatedBytes(): number {
    const arrays = this.keyLocs.byteLength + this.heads.byteLength + this.hashes.byteLength;
    return arrays + this.table.byteLength + this.order.allocatedBytes + this.keyBytes.allocatedBytes;
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
    const hash = hashOf(key);
    const table = this.table;
    for (let i = hash & this.mask; ; i = (i + 1) & this.mask) {
      const stored = table[2 * i + 1]!;
      if (stored === 0) return NONE;
      if (table[2 * i] === hash && this.storedEquals(stored - 1, key)) return stored - 1;
    }
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
    const loc = this.keyLocs[id]!;
    const { keyBytes } = this;
    return read(keyBytes.slabOf(loc), keyBytes.startOf(loc), keyBytes.byteLength(loc));
  }

  head(id: number): number {
    return this.heads[id]!;
  }

  setHead(id: number, slot: number): void {
    this.heads[id] = slot;
  }

  /** Adds `key` (not present) with its newest version `head`; returns its entry. */
  insert(key: string, head: number): number {
    const id = this.freeIds.pop() ?? this.nextId++;
    if (id >= this.heads.length) this.growEntries();
    const hash = hashOf(key);
    const encoded = encodeKey(key, this.scratch);
    this.scratch = encoded.bytes;
    this.keyLocs[id] = this.keyBytes.put(encoded.bytes.subarray(0, encoded.length), id);
    this.heads[id] = head;
    this.hashes[id] = hash;
    if (++this.count > (this.mask + 1) * MAX_LOAD) this.rehash((this.mask + 1) * 2);
    else this.place(id, hash);
    this.order.insert(id, key);
    return id;
  }

  /** Takes out the entry `id` (its key has no version left); its id is free for the next key. */
  remove(id: number): void {
    this.order.remove(id, this.key(id));
    this.unplace(id);
    this.count--;
    this.heads[id] = NONE;
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
    this.keyBytes.free(this.keyLocs[id]!);
    this.keyLocs[id] = Number.NaN;
    this.freeIds.push(id);
  }

  private place(id: number, hash: number): void {
    const table = this.table;
    let i = hash & this.mask;
    while (table[2 * i + 1] !== 0) i = (i + 1) & this.mask;
    table[2 * i] = hash;
    table[2 * i + 1] = id + 1;
  }

  /** Takes `id` out of the table, shifting back the entries after it that probed past its slot. */
  private unplace(id: number): void {
    const table = this.table;
    const mask = this.mask;
    let hole = this.hashes[id]! & mask;
    while (table[2 * hole + 1] !== id + 1) hole = (hole + 1) & mask;
    for (let i = (hole + 1) & mask; table[2 * i + 1] !== 0; i = (i + 1) & mask) {
      const home = table[2 * i]! & mask;
      // The entry at i may fill the hole when its home is not in (hole, i] (cyclically).
      if (hole <= i ? home <= hole || home > i : home <= hole && home > i) {
        table[2 * hole] = table[2 * i]!;
        table[2 * hole + 1] = table[2 * i + 1]!;
        hole = i;
      }
    }
    table[2 * hole + 1] = 0;
  }

  private rehash(slots: number): void {
    this.table = new Int32Array(slots * 2);
    this.mask = slots - 1;
    for (let id = 0; id < this.nextId; id++) {
      if (this.heads[id] !== NONE) this.place(id, this.hashes[id]!);
    }
  }

  private growEntries(): void {
    const capacity = this.heads.length * 2;
    const grow = <T extends Int32Array | Float64Array>(array: T, make: (n: number) => T): T => {
      const bigger = make(capacity);
      bigger.set(array);
      return bigger;
    };
    this.keyLocs = grow(this.keyLocs, (n) => new Float64Array(n).fill(Number.NaN));
    this.heads = grow(this.heads, (n) => new Int32Array(n));
    this.hashes = grow(this.hashes, (n) => new Int32Array(n));
  }
}

/** FNV-1a over the UTF-16 code units. */
function hashOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash | 0; // as the Int32Array keeps it (the empty key's hash is the offset basis, above 2^31)
}

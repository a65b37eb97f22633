import BTreeModule from "sorted-btree";
import { compareIndexKeys } from "../key-order.ts";
import { compareStored, decodeStored, encodeKey, equalsStored } from "./key-bytes.ts";
import { ValueSlabs } from "./value-slabs.ts";
import { NONE } from "./version-table.ts";

/**
 * sorted-btree is CommonJS with `exports.default = BTree`. Bun's runtime hands us the class for a
 * default import, but `bun build --compile` hands us the module object: accept both.
 */
const BTree: typeof BTreeModule = (BTreeModule as unknown as { default?: typeof BTreeModule }).default ?? BTreeModule;

/**
 * The keys of the store, each an entry (an id) holding the slot of its newest version and its key,
 * stored as bytes in slabs (key-bytes.ts; so the garbage collector has no object at all to trace
 * per key), found two ways, both lean on memory:
 *
 * - by key, through an open-addressing hash table in an Int32Array (linear probing; each slot a
 *   key's 32-bit hash and its id side by side, so that a probe reads a key's bytes only when the
 *   hash matches, and finds both in one cache line): O(1) at any size, about 16 bytes a key where a
 *   Map entry costs some 60;
 * - in key order, through a sorted Int32Array of ids plus a small B+ tree of the keys added since
 *   (`recent`), merged into the array once it holds a sixteenth as many: an ordered walk merges the
 *   two. A key that goes stays in the array, marked dead (its head is NONE), until the next merge;
 *   its id is reused only after that, so that the array never names a key it does not hold.
 *
 * Keys are index keys (key-order.ts): native string order is key order.
 */
const MERGE_MIN = 1_024;
const MAX_LOAD = 0.6;

export class KeyIndex {
  /** Where each entry's key is in `keyBytes` (NaN: none). */
  private keyLocs: Float64Array;
  private readonly keyBytes: ValueSlabs;
  private scratch: Uint8Array = new Uint8Array(256);
  private heads: Int32Array;
  private hashes: Int32Array;
  private inSorted: Uint8Array;
  private nextId = 0;
  private readonly freeIds: number[] = [];
  /** Ids dead in `sorted`: free once a merge has taken them out. */
  private deadIds: number[] = [];
  private table: Int32Array;
  private mask: number;
  private count = 0;
  private sorted = new Int32Array(0);
  private recent = new BTree<string, number>(undefined, compareIndexKeys);

  /** `initialCapacity`: entries before the arrays first grow (a power of two). */
  constructor(
    private readonly mergeMin = MERGE_MIN,
    initialCapacity = 1_024,
    slabBytes?: number,
  ) {
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
    this.inSorted = new Uint8Array(initialCapacity);
    this.table = new Int32Array(initialCapacity * 4);
    this.mask = initialCapacity * 2 - 1;
  }

  /** Live keys. */
  get size(): number {
    return this.count;
  }

  /** Bytes of the typed arrays and key slabs (the recent tree not counted). */
  get allocatedBytes(): number {
    const arrays = this.keyLocs.byteLength + this.heads.byteLength + this.hashes.byteLength + this.inSorted.byteLength;
    return arrays + this.table.byteLength + this.sorted.byteLength + this.keyBytes.allocatedBytes;
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
    this.inSorted[id] = 0;
    if (++this.count > (this.mask + 1) * MAX_LOAD) this.rehash((this.mask + 1) * 2);
    else this.place(id, hash);
    this.recent.set(key, id);
    if (this.recent.size > Math.max(this.mergeMin, this.sorted.length >> 4)) this.merge();
    return id;
  }

  /** Takes out the entry `id` (its key has no version left). */
  remove(id: number): void {
    this.unplace(id);
    this.count--;
    this.heads[id] = NONE;
    if (this.inSorted[id] === 0) {
      this.recent.delete(this.key(id));
      this.release(id);
      return;
    }
    this.deadIds.push(id);
    if (this.deadIds.length > Math.max(this.mergeMin, this.sorted.length >> 2)) this.merge();
  }

  /** Live entries with keys ≥ `from` (all without it), in ascending key order. */
  *forward(from?: string): Generator<number> {
    let i = from === undefined ? 0 : this.lowerBound(from);
    const sorted = this.sorted;
    const recent = this.recent.entries(from);
    let next = recent.next();
    for (;;) {
      while (i < sorted.length && this.heads[sorted[i]!] === NONE) i++;
      const a = i < sorted.length ? sorted[i]! : NONE;
      if (next.done) {
        if (a === NONE) return;
        i++;
        yield a;
      } else if (a !== NONE && this.compareTo(a, next.value[0]) < 0) {
        i++;
        yield a;
      } else {
        const id = next.value[1];
        next = recent.next();
        yield id;
      }
    }
  }

  /** Live entries with keys < `below` (all without it), in descending key order. */
  *backward(below?: string): Generator<number> {
    const sorted = this.sorted;
    let i = (below === undefined ? sorted.length : this.lowerBound(below)) - 1;
    const recent = this.recent.entriesReversed(below, undefined, below !== undefined);
    let next = recent.next();
    for (;;) {
      while (i >= 0 && this.heads[sorted[i]!] === NONE) i--;
      const a = i >= 0 ? sorted[i]! : NONE;
      if (next.done) {
        if (a === NONE) return;
        i--;
        yield a;
      } else if (a !== NONE && this.compareTo(a, next.value[0]) > 0) {
        i--;
        yield a;
      } else {
        const id = next.value[1];
        next = recent.next();
        yield id;
      }
    }
  }

  /** The first position in `sorted` whose key is ≥ `key` (dead entries keep their keys: they still order). */
  private lowerBound(key: string): number {
    let low = 0;
    let high = this.sorted.length;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.compareTo(this.sorted[mid]!, key) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  /**
   * Folds `recent` into `sorted` and drops the dead: a pass over the array (typed, cheap) and a
   * binary search per recent key, so a merge at a million keys takes milliseconds, once every
   * sixty-five thousand new keys.
   */
  private merge(): void {
    const live = this.deadIds.length === 0 ? this.sorted : this.sorted.filter((id) => this.heads[id] !== NONE);
    const merged = new Int32Array(live.length + this.recent.size);
    let from = 0;
    let to = 0;
    for (const [key, id] of this.recent.entries()) {
      let low = from;
      let high = live.length;
      while (low < high) {
        const mid = (low + high) >>> 1;
        if (this.compareTo(live[mid]!, key) < 0) low = mid + 1;
        else high = mid;
      }
      merged.set(live.subarray(from, low), to);
      to += low - from;
      from = low;
      merged[to++] = id;
      this.inSorted[id] = 1;
    }
    merged.set(live.subarray(from), to);
    this.sorted = merged;
    this.recent = new BTree<string, number>(undefined, compareIndexKeys);
    for (const id of this.deadIds) this.release(id);
    this.deadIds = [];
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
    const grow = <T extends Int32Array | Uint8Array | Float64Array>(array: T, make: (n: number) => T): T => {
      const bigger = make(capacity);
      bigger.set(array);
      return bigger;
    };
    this.keyLocs = grow(this.keyLocs, (n) => new Float64Array(n).fill(Number.NaN));
    this.heads = grow(this.heads, (n) => new Int32Array(n));
    this.hashes = grow(this.hashes, (n) => new Int32Array(n));
    this.inSorted = grow(this.inSorted, (n) => new Uint8Array(n));
  }
}

/** FNV-1a over the UTF-16 code units. */
function hashOf(key: string): number {
  let hash = 0x811c9dc5;
  for (let i = 0; i < key.length; i++) hash = Math.imul(hash ^ key.charCodeAt(i), 0x01000193);
  return hash | 0; // as the Int32Array keeps it (the empty key's hash is the offset basis, above 2^31)
}

import { NONE } from "./version-table.ts";

const MAX_LOAD = 0.6;
/** A slot's id field: 0 empty, id + 1 taken, DELETED taken out of the old table during a move. */
const EMPTY = 0;
const DELETED = -1;
const MOVES_PER_ADD = 16;

/**
 * Entry ids by the 32-bit hash of their keys: open addressing in an Int32Array (linear probing;
 * each slot a hash and an id side by side, so that a probe reads a key's bytes only when the hash
 * matches, and finds both in one cache line), about 16 bytes a key.
 *
 * Growing never stops the world: the table doubles into a new array, and each later add carries
 * `movesPerAdd` slots of the old one over (like Redis's incremental rehash). Until the old table is
 * empty, lookups try the new one, then the part of the old one not yet carried over. Rehashing a
 * million keys at once took 55–120 ms, one cache miss per key. Slots are taken out of the old
 * table by marking them, never by shifting: a shift could move an entry into the part already
 * carried over, where it would be lost.
 */
export class IdHashTable {
  private table: Int32Array;
  private mask: number;
  private old: Int32Array | undefined;
  private oldMask = 0;
  /** Old slots below this one are carried over. */
  private moved = 0;
  private count = 0;

  constructor(
    /** Whether entry `id`'s key is `key` (its hash matched). */
    private readonly equals: (id: number, key: string) => boolean,
    slots = 2_048,
    private readonly movesPerAdd = MOVES_PER_ADD,
  ) {
    this.table = new Int32Array(slots * 2);
    this.mask = slots - 1;
  }

  get size(): number {
    return this.count;
  }

  get allocatedBytes(): number {
    return this.table.byteLength + (this.old?.byteLength ?? 0);
  }

  /** The entry whose key is `key` (hashed to `hash`), or NONE. */
  find(hash: number, key: string): number {
    const found = this.probe(this.table, this.mask, hash, key, 0);
    return found !== NONE || this.old === undefined ? found : this.probe(this.old, this.oldMask, hash, key, this.moved);
  }

  /** Adds entry `id` (not present) under `hash`. */
  add(id: number, hash: number): void {
    if (this.old) this.carryOver(this.movesPerAdd);
    if (++this.count > (this.mask + 1) * MAX_LOAD) this.grow();
    place(this.table, this.mask, id, hash);
  }

  /** Takes out entry `id`, added under `hash`. */
  delete(id: number, hash: number): void {
    this.count--;
    if (this.old) {
      const slot = slotOf(this.old, this.oldMask, id, hash, this.moved);
      if (slot !== NONE) {
        this.old[2 * slot + 1] = DELETED;
        return;
      }
    }
    unplace(this.table, this.mask, id, hash);
  }

  /** Probes for `key`, accepting only slots ≥ `from` (the old table's part not yet carried over). */
  private probe(table: Int32Array, mask: number, hash: number, key: string, from: number): number {
    for (let i = hash & mask; ; i = (i + 1) & mask) {
      const stored = table[2 * i + 1]!;
      if (stored === EMPTY) return NONE;
      if (stored > 0 && table[2 * i] === hash && i >= from && this.equals(stored - 1, key)) return stored - 1;
    }
  }

  private grow(): void {
    if (this.old) this.carryOver(Number.POSITIVE_INFINITY); // the last move outran: finish it first
    this.old = this.table;
    this.oldMask = this.mask;
    this.moved = 0;
    this.table = new Int32Array(this.old.length * 2);
    this.mask = this.mask * 2 + 1;
  }

  private carryOver(slots: number): void {
    const old = this.old!;
    const end = Math.min(this.oldMask + 1, this.moved + slots);
    for (let i = this.moved; i < end; i++) {
      const stored = old[2 * i + 1]!;
      if (stored > 0) place(this.table, this.mask, stored - 1, old[2 * i]!);
    }
    this.moved = end;
    if (end === this.oldMask + 1) this.old = undefined;
  }
}

function place(table: Int32Array, mask: number, id: number, hash: number): void {
  let i = hash & mask;
  while (table[2 * i + 1] !== EMPTY) i = (i + 1) & mask;
  table[2 * i] = hash;
  table[2 * i + 1] = id + 1;
}

/** The slot ≥ `from` holding `id`, or NONE. */
function slotOf(table: Int32Array, mask: number, id: number, hash: number, from: number): number {
  for (let i = hash & mask; table[2 * i + 1] !== EMPTY; i = (i + 1) & mask)
    if (table[2 * i + 1] === id + 1 && i >= from) return i;
  return NONE;
}

/** Takes `id` out, shifting back the entries after it that probed past its slot. */
function unplace(table: Int32Array, mask: number, id: number, hash: number): void {
  let hole = slotOf(table, mask, id, hash, 0);
  for (let i = (hole + 1) & mask; table[2 * i + 1] !== EMPTY; i = (i + 1) & mask) {
    const home = table[2 * i]! & mask;
    // The entry at i may fill the hole when its home is not in (hole, i] (cyclically).
    if (hole <= i ? home <= hole || home > i : home <= hole && home > i) {
      table[2 * hole] = table[2 * i]!;
      table[2 * hole + 1] = table[2 * i + 1]!;
      hole = i;
    }
  }
  table[2 * hole + 1] = EMPTY;
}

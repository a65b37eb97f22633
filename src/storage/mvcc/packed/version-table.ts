/**
 * Every version of every key, as rows of one Float64Array instead of an object each: six numbers a
 * version (48 bytes, one or two cache lines), no object for the garbage collector to trace. A row is
 * addressed by its slot; freed slots are reused.
 *
 *   revision · createRevision · version · expiresAtMs (NaN: no TTL) · value (a ValueSlabs location;
 *   -1: a tombstone) · older (the slot of the key's previous version; -1: none)
 *
 * A key's versions are a list from its newest version through `older` links (see chain.ts).
 */
const FIELDS = 6;
const REVISION = 0;
const CREATE_REVISION = 1;
const VERSION = 2;
const EXPIRES_AT = 3;
const VALUE = 4;
const OLDER = 5;

export const NONE = -1;

export class VersionTable {
  private rows: Float64Array;
  private capacity: number;
  private next = 0;
  private readonly freeSlots: number[] = [];

  constructor(initialCapacity = 1_024) {
    this.capacity = initialCapacity;
    this.rows = new Float64Array(initialCapacity * FIELDS);
  }

  /** A new row. */
  alloc(revision: number, createRevision: number, version: number, expiresAtMs: number | undefined, value: number, older: number): number {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      if (this.next === this.capacity) this.grow();
      slot = this.next++;
    }
    this.rewrite(slot, revision, createRevision, version, expiresAtMs, value);
    this.rows[slot * FIELDS + OLDER] = older;
    return slot;
  }

  /** Sets every field of row `slot` but its link to the older version. */
  rewrite(slot: number, revision: number, createRevision: number, version: number, expiresAtMs: number | undefined, value: number): void {
    const at = slot * FIELDS;
    const rows = this.rows;
    rows[at + REVISION] = revision;
    rows[at + CREATE_REVISION] = createRevision;
    rows[at + VERSION] = version;
    rows[at + EXPIRES_AT] = expiresAtMs ?? Number.NaN;
    rows[at + VALUE] = value;
  }

  free(slot: number): void {
    // A freed row holds no value: evacuation must not take it for the owner of a record.
    this.rows[slot * FIELDS + VALUE] = Number.NaN;
    this.freeSlots.push(slot);
  }

  /** Rows in use. */
  get size(): number {
    return this.next - this.freeSlots.length;
  }

  /** Bytes the table takes. */
  get allocatedBytes(): number {
    return this.rows.byteLength;
  }

  revision(slot: number): number {
    return this.rows[slot * FIELDS + REVISION]!;
  }

  createRevision(slot: number): number {
    return this.rows[slot * FIELDS + CREATE_REVISION]!;
  }

  version(slot: number): number {
    return this.rows[slot * FIELDS + VERSION]!;
  }

  /** The TTL deadline, or undefined. */
  expiresAtMs(slot: number): number | undefined {
    const at = this.rows[slot * FIELDS + EXPIRES_AT]!;
    return Number.isNaN(at) ? undefined : at;
  }

  /** The value's location, or NONE for a tombstone (NaN for a freed row). */
  value(slot: number): number {
    return this.rows[slot * FIELDS + VALUE]!;
  }

  setValue(slot: number, loc: number): void {
    this.rows[slot * FIELDS + VALUE] = loc;
  }

  older(slot: number): number {
    return this.rows[slot * FIELDS + OLDER]!;
  }

  setOlder(slot: number, older: number): void {
    this.rows[slot * FIELDS + OLDER] = older;
  }

  /** Whether `slot` is a row in use whose value is at `loc` (a value record's owner check). */
  holds(slot: number, loc: number): boolean {
    return slot >= 0 && slot < this.next && this.rows[slot * FIELDS + VALUE] === loc;
  }

  /** Grows by half: copying amortizes to O(1) a row, and at most a third of the table stands empty. */
  private grow(): void {
    this.capacity = Math.ceil(this.capacity * 1.5);
    const rows = new Float64Array(this.capacity * FIELDS);
    rows.set(this.rows);
    this.rows = rows;
  }
}

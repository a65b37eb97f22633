/**
 * Every version of every key, as rows of Float64Arrays instead of an object each: five numbers a
 * version (40 bytes, one or two cache lines), no object for the garbage collector to trace. A row is
 * addressed by its slot; freed slots are reused.
 *
 *   revision · createRevision · version · value (a ValueSlabs location; -1: a tombstone) ·
 *   older (the slot of the key's previous version; -1: none)
 *
 * A version's TTL deadline (NaN: none) is kept beside the rows, in a column whose chunks exist only
 * where some version has one (chunked-rows.ts's SparseColumn).
 *
 * Rows live in chunks of 65,536 (2.5 MiB; chunked-rows.ts): the table grows by a chunk, never by copying.
 *
 * A key's versions are a list from its newest version through `older` links (see version-chain.ts).
 */
const FIELDS = 5;
const REVISION = 0;
const CREATE_REVISION = 1;
const VERSION = 2;
const VALUE = 3;
const OLDER = 4;

import { ChunkedRows, SparseColumn } from "./chunked-rows.ts";

export const NONE = -1;

export class VersionTable {
  private readonly rows: ChunkedRows;
  private readonly expiresAt: SparseColumn;
  private next = 0;
  private readonly freeSlots: number[] = [];

  /** `chunkBits`: log2 of the rows a chunk holds (tests make chunks tiny). */
  constructor(chunkBits = 16) {
    this.rows = new ChunkedRows((length) => new Float64Array(length), chunkBits, FIELDS);
    this.expiresAt = new SparseColumn(chunkBits);
  }

  /** A new row. */
  alloc(
    revision: number,
    createRevision: number,
    version: number,
    expiresAtMs: number | undefined,
    value: number,
    older: number,
  ): number {
    let slot = this.freeSlots.pop();
    if (slot === undefined) {
      slot = this.next++;
      this.rows.reserve(slot);
    }
    this.rewrite(slot, revision, createRevision, version, expiresAtMs, value);
    this.set(slot, OLDER, older);
    return slot;
  }

  /** Sets every field of row `slot` but its link to the older version. */
  rewrite(
    slot: number,
    revision: number,
    createRevision: number,
    version: number,
    expiresAtMs: number | undefined,
    value: number,
  ): void {
    this.set(slot, REVISION, revision);
    this.set(slot, CREATE_REVISION, createRevision);
    this.set(slot, VERSION, version);
    this.expiresAt.set(slot, expiresAtMs ?? Number.NaN);
    this.set(slot, VALUE, value);
  }

  free(slot: number): void {
    // A freed row holds no value: evacuation must not take it for the owner of a record.
    this.set(slot, VALUE, Number.NaN);
    this.freeSlots.push(slot);
  }

  /** Rows in use. */
  get size(): number {
    return this.next - this.freeSlots.length;
  }

  /** Bytes the table takes. */
  get allocatedBytes(): number {
    return this.rows.byteLength + this.expiresAt.byteLength;
  }

  revision(slot: number): number {
    return this.get(slot, REVISION);
  }

  createRevision(slot: number): number {
    return this.get(slot, CREATE_REVISION);
  }

  version(slot: number): number {
    return this.get(slot, VERSION);
  }

  /** The TTL deadline, or undefined. */
  expiresAtMs(slot: number): number | undefined {
    const at = this.expiresAt.get(slot);
    return Number.isNaN(at) ? undefined : at;
  }

  /** The value's location, or NONE for a tombstone (NaN for a freed row). */
  value(slot: number): number {
    return this.get(slot, VALUE);
  }

  setValue(slot: number, loc: number): void {
    this.set(slot, VALUE, loc);
  }

  older(slot: number): number {
    return this.get(slot, OLDER);
  }

  setOlder(slot: number, older: number): void {
    this.set(slot, OLDER, older);
  }

  /** Whether `slot` is a row in use whose value is at `loc` (a value record's owner check). */
  holds(slot: number, loc: number): boolean {
    return slot >= 0 && slot < this.next && this.get(slot, VALUE) === loc;
  }

  private get(slot: number, field: number): number {
    return this.rows.get(slot, field);
  }

  private set(slot: number, field: number, value: number): void {
    this.rows.set(slot, value, field);
  }
}

import { assert } from "../../errors.ts";
import { KeyIndex } from "./packed/key-index.ts";
import { ValueSlabs } from "./packed/value-slabs.ts";
import { NONE, VersionTable } from "./packed/version-table.ts";

/**
 * The versions of every key, newest first, each stamped with the revision of the commit that wrote
 * it. A tombstone (no value) says the key was deleted at that revision.
 *
 * Worked example (the same steps run in test/storage/version-chain.test.ts):
 *
 *   put  k=a  at rev 3      [3:a]
 *   put  k=b  at rev 5      [3:a, 5:b]
 *   del  k    at rev 7      [3:a, 5:b, 7:∅]
 *   read at rev 4 → a,  at rev 6 → b,  at rev 7 → missing,  at rev 2 → missing
 *   compact at floor 5      [5:b, 7:∅]     (3:a is shadowed by 5:b, which is ≤ the floor)
 *   compact at floor 7      []             (the tombstone is ≤ the floor: nothing is left to read;
 *                                           the key leaves the index)
 *
 * Invariants: revisions strictly increase; no two tombstones in a row (deleting a deleted key
 * writes nothing); a chain never ends (oldest) in a tombstone after compaction.
 *
 * Laid out for memory (a million keys of 16 bytes with 100-byte values): each key an entry in the
 * KeyIndex (its bytes in a slab), each version a row of the VersionTable linked to the one before,
 * each value in ValueSlabs — no object per key, version or value, so the garbage collector has
 * nothing to trace however many keys the store holds.
 */
export interface Version {
  readonly revision: number;
  /** Null: a tombstone. */
  readonly value: Uint8Array | null;
  /** The revision that created the key's current life (the first put after it was missing). */
  readonly createRevision: number;
  /** Puts since then, this one included (1 for a new key; 0 for a tombstone). */
  readonly version: number;
  /** Wall-clock deadline (Unix ms) after which the key is deleted; undefined: no TTL. */
  readonly expiresAtMs?: number;
}

export { NONE };

/** Sizes of the packed structures; the defaults suit a server, tests make them tiny to exercise their edges. */
export interface ChainTuning {
  slabBytes?: number;
  /** Ids a leaf of the key order holds. */
  leafMax?: number;
  /** log2 of the version rows a chunk holds. */
  chunkBits?: number;
}

export class VersionChains {
  readonly index: KeyIndex;
  private readonly table: VersionTable;
  private readonly values: ValueSlabs;
  private visited = 0;

  constructor(tuning: ChainTuning = {}) {
    this.table = new VersionTable(tuning.chunkBits);
    this.index = new KeyIndex(tuning.leafMax, undefined, tuning.slabBytes);
    this.values = new ValueSlabs(
      {
        isLive: (slot, loc) => this.table.holds(slot, loc),
        moved: (slot, loc) => this.table.setValue(slot, loc),
      },
      tuning.slabBytes,
    );
  }

  /** The newest version of the key `id`. */
  newest(id: number): number {
    return this.index.head(id);
  }

  /**
   * Adds the version a put (or, with `null`, a delete) of index key `key` at `revision` makes, as
   * the newest of entry `id` (NONE: the key is new); returns the entry.
   */
  append(key: string, id: number, revision: number, value: Uint8Array | null, expiresAtMs?: number): number {
    const last = id === NONE ? NONE : this.index.head(id);
    assert(
      last === NONE || this.table.revision(last) < revision,
      `version chain revisions must increase (${last === NONE ? "none" : this.table.revision(last)} then ${revision})`,
    );
    assert(value !== null || last === NONE || this.table.value(last) !== NONE, "two tombstones in a row");
    if (value === null) return this.push(key, id, last, { revision, value, createRevision: 0, version: 0 });
    return this.push(key, id, last, { revision, value, ...this.countersAfter(last, revision), expiresAtMs });
  }

  /** The counters a put at `revision` gets after version `last` (NONE: none): the same life if `last` is a value. */
  private countersAfter(last: number, revision: number): { createRevision: number; version: number } {
    const alive = last !== NONE && this.table.value(last) !== NONE;
    return alive
      ? { createRevision: this.table.createRevision(last), version: this.table.version(last) + 1 }
      : { createRevision: revision, version: 1 };
  }

  /**
   * Like `append` for a put at `revision` when nothing may read the key's only version any more
   * (it is below the GC floor, with nothing older): the version's row is rewritten in place instead
   * of a row taken and one freed — the common write with no history kept, and one cache miss less.
   */
  replaceOnly(id: number, revision: number, value: Uint8Array, expiresAtMs?: number): void {
    const { table } = this;
    const slot = this.index.head(id);
    assert(table.older(slot) === NONE && table.revision(slot) < revision, "only a single older version is replaced");
    const { createRevision, version } = this.countersAfter(slot, revision);
    const old = table.value(slot);
    if (old !== NONE) this.values.free(old);
    table.rewrite(slot, revision, createRevision, version, expiresAtMs, this.values.put(value, slot));
  }

  /** Whether entry `id` has a single version. */
  hasSingleVersion(id: number): boolean {
    return this.table.older(this.index.head(id)) === NONE;
  }

  /** Adds a version read back from a checkpoint, counters and all, as the newest of entry `id` (NONE: new). */
  restore(key: string, id: number, version: Version): number {
    const last = id === NONE ? NONE : this.index.head(id);
    assert(last === NONE || this.table.revision(last) < version.revision, "checkpoint versions must be oldest first");
    return this.push(key, id, last, version);
  }

  private push(
    key: string,
    id: number,
    last: number,
    { revision, value, createRevision, version, expiresAtMs }: Version,
  ): number {
    const slot = this.table.alloc(revision, createRevision, version, expiresAtMs, NONE, last);
    if (value !== null) this.table.setValue(slot, this.values.put(value, slot));
    if (id === NONE) return this.index.insert(key, slot);
    this.index.setHead(id, slot);
    return id;
  }

  /** The version of entry `id` visible at `revision` (possibly a tombstone), or NONE. */
  versionAt(id: number, revision: number): number {
    let slot = this.index.head(id);
    this.visited++;
    while (slot !== NONE && this.table.revision(slot) > revision) {
      slot = this.table.older(slot);
      this.visited++;
    }
    return slot;
  }

  /**
   * Versions read so far by reads at a revision and by compactions: the work they did, which must
   * not grow with a key's history (tests read it).
   */
  get versionsVisited(): number {
    return this.visited;
  }

  revision(slot: number): number {
    return this.table.revision(slot);
  }

  isTombstone(slot: number): boolean {
    return this.table.value(slot) === NONE;
  }

  /** The value of a version (a copy), or null for a tombstone. */
  value(slot: number): Uint8Array | null {
    const loc = this.table.value(slot);
    return loc === NONE ? null : this.values.get(loc);
  }

  valueBytes(slot: number): number {
    const loc = this.table.value(slot);
    return loc === NONE ? 0 : this.values.byteLength(loc);
  }

  version(slot: number): Version {
    const { table } = this;
    const expiresAtMs = table.expiresAtMs(slot);
    return {
      revision: table.revision(slot),
      value: this.value(slot),
      createRevision: table.createRevision(slot),
      version: table.version(slot),
      ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
    };
  }

  /** The versions of entry `id`, oldest first. */
  versions(id: number): number[] {
    const slots: number[] = [];
    for (let slot = this.index.head(id); slot !== NONE; slot = this.table.older(slot)) slots.push(slot);
    return slots.reverse();
  }

  /**
   * Drops every version of entry `id` no reader at or after `floor` can see: all versions shadowed
   * by a newer one that is ≤ floor, and the version at the floor itself if it is a tombstone. A key
   * left with no version leaves the index. Returns how many versions were dropped.
   */
  compact(id: number, floor: number): number {
    const { table } = this;
    let newer = NONE;
    let visible = this.index.head(id);
    this.visited++;
    while (visible !== NONE && table.revision(visible) > floor) {
      newer = visible;
      visible = table.older(visible);
      this.visited++;
    }
    if (visible === NONE) return 0;
    let drop = table.older(visible);
    if (table.value(visible) === NONE) drop = visible;
    else table.setOlder(visible, NONE);
    if (drop === visible) {
      if (newer === NONE) this.index.remove(id);
      else table.setOlder(newer, NONE);
    }
    let dropped = 0;
    while (drop !== NONE) {
      const older = table.older(drop);
      const loc = table.value(drop);
      if (loc !== NONE) this.values.free(loc);
      table.free(drop);
      drop = older;
      dropped++;
      this.visited++;
    }
    return dropped;
  }

  /** True when a later compaction (at a higher floor) could still drop something from entry `id`. */
  mayHoldGarbage(id: number): boolean {
    const head = this.index.head(id);
    return head !== NONE && (this.table.older(head) !== NONE || this.table.value(head) === NONE);
  }

  /** Moves the values or keys of one half-empty slab (bounded work); true when more wait. */
  evacuateSlab(): boolean {
    if (this.values.evacuationPending) this.values.evacuateOne();
    else this.index.evacuateSlab();
    return this.evacuationPending;
  }

  get evacuationPending(): boolean {
    return this.values.evacuationPending || this.index.evacuationPending;
  }

  /** Bytes of the typed arrays and slabs. */
  get allocatedBytes(): number {
    return this.index.allocatedBytes + this.table.allocatedBytes + this.values.allocatedBytes;
  }
}

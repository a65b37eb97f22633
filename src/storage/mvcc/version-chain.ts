import { AssertionError, assert } from "../../errors.ts";
import { toIndexKey } from "./key-order.ts";
import { KeyIndex } from "./packed/key-index.ts";
import { ValueSlabs } from "./packed/value-slabs.ts";
import { VersionRing } from "./packed/version-ring.ts";
import { NONE, VersionTable } from "./packed/version-table.ts";
import type { ChainCursor } from "./store-types.ts";

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
 *
 * Long histories: a key written thousands of times under the default 10,000 revisions of history
 * keeps thousands of versions, and a walk from the newest would make every write (its compaction)
 * and every read at an old revision cost the whole history. So a chain that a walk finds longer
 * than `ringMin` versions (32) gets a VersionRing: its versions oldest first, by revision.
 * Compaction then drops from the oldest end, visiting only what it drops (plus one), and a read at
 * a revision is a binary search: O(log versions), O(1) for the newest. The ring costs 12 bytes a
 * version (and its spare room) beside the 48 of its row, only for such keys; a key whose chain shrinks to a quarter of
 * `ringMin` loses it (no ring ever holds a lone version). The `older` links stay exact either way.
 *
 *   puts at revs 1…40      rows [r1] ◀─older─ [r2] ◀─ … ◀─ [r40] ◀── head (KeyIndex); no ring
 *   compact at floor 3     walks r40 … r3 (past 37 > 32 versions), frees r1, r2, then rings the rest:
 *                          ring (3,r3) (4,r4) … (40,r40)
 *   compact at floor 5     from the ring's oldest end: r3, r4 freed, r5.older = none
 *   read at rev 17         a binary search in the ring (at most 6 probes) → r17
 *   read at rev 40         the newest, O(1) → r40
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
  /** Versions a walk down a chain may pass before the chain gets a ring (tests make it tiny). */
  ringMin?: number;
  /** log2 of the keys a chunk of the key index's columns holds. */
  indexChunkBits?: number;
}

const RING_MIN = 32;

export class VersionChains {
  readonly index: KeyIndex;
  private readonly table: VersionTable;
  private readonly values: ValueSlabs;
  /** The rings of the entries with long chains (see the header). */
  private readonly rings = new Map<number, VersionRing>();
  private readonly ringMin: number;
  private visited = 0;
  private freedValueBytes = 0;

  constructor(tuning: ChainTuning = {}) {
    this.table = new VersionTable(tuning.chunkBits);
    this.ringMin = tuning.ringMin ?? RING_MIN;
    assert(this.ringMin >= 1, "a ring needs at least one version");
    this.index = new KeyIndex(tuning.leafMax, tuning.indexChunkBits, tuning.slabBytes);
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
      () =>
        `version chain revisions must increase (${last === NONE ? "none" : this.table.revision(last)} then ${revision})`,
    );
    assert(value !== null || last === NONE || this.table.value(last) !== NONE, "two tombstones in a row");
    if (value === null) return this.push(key, id, last, { revision, value, createRevision: 0, version: 0 });
    const { createRevision, version } = this.countersAfter(last, revision);
    return this.push(key, id, last, { revision, value, createRevision, version, expiresAtMs });
  }

  /**
   * Like `append`, with the version's counters given: a store whose chains hold only a key's newest
   * versions (the FLSM engine's memtable, whose older versions are in its tables) counts them itself.
   */
  appendCounted(key: string, id: number, counted: Version): number {
    const last = id === NONE ? NONE : this.index.head(id);
    // Checked before the assert's message is made: this runs for every write.
    if (last !== NONE && this.table.revision(last) >= counted.revision)
      assert(false, `version chain revisions must increase (${this.table.revision(last)} then ${counted.revision})`);
    return this.push(key, id, last, counted);
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
    assert(!this.rings.has(id), "a lone version has no ring");
    const { createRevision, version } = this.countersAfter(slot, revision);
    const old = table.value(slot);
    if (old !== NONE) this.values.free(old);
    table.rewrite(slot, revision, createRevision, version, expiresAtMs, this.values.put(value, slot));
  }

  /** Whether entry `id` has a single version. */
  hasSingleVersion(id: number): boolean {
    return this.table.older(this.index.head(id)) === NONE;
  }

  /**
   * Adds the version `chain` is at (a checkpoint's, read in place), counters and all, as the newest
   * of entry `id`; NONE: it is the chain's first, and the key is new. Returns the entry. A key that
   * is ASCII and sorts after every key present (a checkpoint's, in key order) goes in as bytes;
   * any other is decoded, and added the way a put adds one.
   */
  restoreFrom(chain: ChainCursor, id: number): number {
    const last = id === NONE ? NONE : this.index.head(id);
    const { revision } = chain;
    if (last !== NONE && this.table.revision(last) >= revision)
      throw new AssertionError(`checkpoint versions of ${JSON.stringify(chain.key())} are not oldest first`);
    const slot = this.table.alloc(revision, chain.createRevision, chain.version, chain.expiresAtMs, NONE, last);
    if (chain.valueLength >= 0)
      this.table.setValue(slot, this.values.putFrom(chain.valueBytes, chain.valueStart, chain.valueLength, slot));
    if (id !== NONE) return this.makeNewest(id, slot, revision);
    const appended = this.index.appendAscii(chain.keyBytes, chain.keyStart, chain.keyLength, slot);
    if (appended !== NONE) return appended;
    const key = toIndexKey(chain.key());
    if (this.index.find(key) !== NONE)
      throw new AssertionError(`checkpoint holds ${JSON.stringify(chain.key())} twice`);
    return this.index.insert(key, slot);
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
    this.makeNewest(id, slot, revision);
    // A chain that grows long gets its ring while it grows, so that no read at an old revision walks
    // it first: looked at every ringMin-th put of a life (and at deletes), a walk of ringMin + 1 at most.
    if (version % this.ringMin === 0 && this.ringOf(id) === undefined && this.longerThan(slot, this.ringMin))
      this.ringUp(id);
    return id;
  }

  /** Whether the chain from version `slot` down holds more than `count` versions (a walk of count + 1 at most). */
  private longerThan(slot: number, count: number): boolean {
    let passed = 0;
    for (let at = slot; at !== NONE && passed <= count; at = this.table.older(at)) passed++;
    this.visited += passed;
    return passed > count;
  }

  /** Makes `slot`, written at `revision`, the newest version of entry `id`; returns the entry. */
  private makeNewest(id: number, slot: number, revision: number): number {
    this.index.setHead(id, slot);
    this.ringOf(id)?.push(revision, slot);
    return id;
  }

  /** The version of entry `id` visible at `revision` (possibly a tombstone), or NONE. */
  versionAt(id: number, revision: number): number {
    const head = this.index.head(id);
    this.visited++;
    if (this.table.revision(head) <= revision) return head;
    const ring = this.ringOf(id);
    if (ring !== undefined) {
      const position = this.newestAtOrBelow(ring, revision);
      return position === -1 ? NONE : ring.slot(position);
    }
    let slot = head;
    let passed = 0;
    while (slot !== NONE && this.table.revision(slot) > revision) {
      slot = this.table.older(slot);
      passed++;
    }
    this.visited += passed;
    if (passed > this.ringMin) this.ringUp(id);
    return slot;
  }

  /** The position in `ring` of the newest version at or below `revision`; -1: all are newer. */
  private newestAtOrBelow(ring: VersionRing, revision: number): number {
    let low = 0;
    let high = ring.length - 1;
    let found = -1;
    while (low <= high) {
      const middle = (low + high) >>> 1;
      this.visited++;
      if (ring.revision(middle) <= revision) {
        found = middle;
        low = middle + 1;
      } else high = middle - 1;
    }
    return found;
  }

  /**
   * Versions read so far by reads at a revision and by compactions: the work they did, which must
   * not grow with a key's history (tests read it).
   */
  get versionsVisited(): number {
    return this.visited;
  }

  /** Bytes of the values compactions have freed so far (a store that counts its bytes reads it around one). */
  get valueBytesFreed(): number {
    return this.freedValueBytes;
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

  /** Version `slot` with `key` beside it, in one object (the FLSM engine's entries). */
  keyedVersion<K>(slot: number, key: K): Version & { readonly key: K } {
    const { table } = this;
    const expiresAtMs = table.expiresAtMs(slot);
    const revision = table.revision(slot);
    const value = this.value(slot);
    const createRevision = table.createRevision(slot);
    const version = table.version(slot);
    return expiresAtMs === undefined
      ? { key, revision, value, createRevision, version }
      : { key, revision, value, createRevision, version, expiresAtMs };
  }

  /** The version before `slot` in its chain (NONE: it is the oldest). */
  older(slot: number): number {
    return this.table.older(slot);
  }

  /** The versions of entry `id`, oldest first. */
  versions(id: number): number[] {
    const slots: number[] = [];
    for (let slot = this.index.head(id); slot !== NONE; slot = this.table.older(slot)) slots.push(slot);
    return slots.reverse();
  }

  /**
   * Drops every version of entry `id` no reader at or after `floor` can see: all versions shadowed
   * by a newer one that is ≤ floor, and the version at the floor itself if it is a tombstone (unless
   * `keepTombstone`). A key left with no version leaves the index. Returns how many versions were dropped. A chain with a
   * ring drops at most `ringMax` + 1 of them (the oldest; a later compaction takes the rest).
   */
  compact(id: number, floor: number, ringMax = Number.POSITIVE_INFINITY, keepTombstone = false): number {
    const ring = this.ringOf(id);
    if (ring === undefined) return this.compactList(id, floor, keepTombstone);
    // The version visible at the floor, found from the oldest end: only what goes is visited. One
    // under the floor but shadowed (where `ringMax` stops) may go with what is older, too.
    let position = -1;
    while (position + 1 < ring.length && position < ringMax && ring.revision(position + 1) <= floor) position++;
    this.visited += position + 2;
    if (position === -1) return 0;
    const newer = position + 1 < ring.length ? ring.slot(position + 1) : NONE;
    const dropped = this.dropUnder(id, newer, ring.slot(position), keepTombstone);
    this.dropFromRing(id, ring, dropped);
    return dropped;
  }

  /** `compact` for a chain without a ring: a walk from the newest down to the floor (a long one rings the chain). */
  private compactList(id: number, floor: number, keepTombstone: boolean): number {
    const { table } = this;
    let newer = NONE;
    let visible = this.index.head(id);
    let passed = 0;
    while (visible !== NONE && table.revision(visible) > floor) {
      newer = visible;
      visible = table.older(visible);
      passed++;
    }
    this.visited += passed + 1;
    const dropped = visible === NONE ? 0 : this.dropUnder(id, newer, visible, keepTombstone);
    if (passed > this.ringMin) this.ringUp(id);
    return dropped;
  }

  /**
   * Frees the versions older than `visible` (the one a read at the floor sees), and `visible` too
   * if it is a tombstone; `newer` is the version after it (NONE: it is the newest, and a tombstone
   * there takes the key out of the index). `keepTombstone`: a tombstone at the floor stays, the
   * oldest version left (it hides versions kept elsewhere). Returns how many versions went.
   */
  private dropUnder(id: number, newer: number, visible: number, keepTombstone: boolean): number {
    const { table } = this;
    let drop = table.older(visible);
    if (table.value(visible) === NONE && !keepTombstone) {
      drop = visible;
      if (newer === NONE) this.index.remove(id);
      else table.setOlder(newer, NONE);
    } else table.setOlder(visible, NONE);
    return this.freeList(drop);
  }

  /** Frees version `drop` and every older one; returns how many. */
  private freeList(drop: number): number {
    const { table } = this;
    let dropped = 0;
    while (drop !== NONE) {
      const older = table.older(drop);
      const loc = table.value(drop);
      if (loc !== NONE) {
        this.freedValueBytes += this.values.byteLength(loc);
        this.values.free(loc);
      }
      table.free(drop);
      drop = older;
      dropped++;
    }
    this.visited += dropped;
    return dropped;
  }

  /**
   * Drops the versions of entry `id` older than `slot`, the version a write at `revision` made,
   * now at or below the GC floor: a reader at or after the floor sees it or a newer one, never
   * those. It starts where the garbage is, so a key's history above the floor is not walked: the
   * work is what goes, plus one. 0 when the row no longer holds that version (the key's GC went
   * past it, which took the older ones too; a freed row keeps its revision but not its value, a
   * reused one has another revision: a later one, or a late commit's, which is above the compacted
   * revision and so above that of every row freed). -1 when it is a tombstone, which may have to go itself:
   * `compact` decides that.
   */
  dropOlderThan(id: number, slot: number, revision: number): number {
    const { table } = this;
    this.visited++;
    const value = table.value(slot);
    if (table.revision(slot) !== revision || Number.isNaN(value)) return 0;
    if (value === NONE) return -1;
    const oldest = table.older(slot);
    if (oldest === NONE) return 0;
    table.setOlder(slot, NONE);
    const dropped = this.freeList(oldest);
    const ring = this.ringOf(id);
    if (ring !== undefined) this.dropFromRing(id, ring, dropped);
    return dropped;
  }

  /** Takes the `dropped` oldest versions out of entry `id`'s ring, and the ring from a chain grown short. */
  private dropFromRing(id: number, ring: VersionRing, dropped: number): void {
    ring.dropOldest(dropped);
    // A short chain is walked again; an empty one has left the index, and its id may name another key.
    if (ring.length <= Math.max(1, this.ringMin >> 2)) this.rings.delete(id);
  }

  /** Whether entry `id`'s chain has a ring (its compaction starts from the oldest version). */
  hasRing(id: number): boolean {
    return this.ringOf(id) !== undefined;
  }

  /** Entry `id`'s ring, if its chain has one. */
  private ringOf(id: number): VersionRing | undefined {
    return this.rings.size === 0 ? undefined : this.rings.get(id);
  }

  /** Gives entry `id` a ring of its versions: one walk of the chain, so that the next ones are short. */
  private ringUp(id: number): void {
    const slots = this.versions(id);
    const ring = new VersionRing(slots.length);
    for (const slot of slots) ring.push(this.table.revision(slot), slot);
    this.visited += slots.length;
    this.rings.set(id, ring);
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

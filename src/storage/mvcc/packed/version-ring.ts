import { assert } from "../../../errors.ts";

/** The fewest versions a ring has room for. */
const CAPACITY_MIN = 16;

/**
 * One key's versions by position, oldest first: (revision, version-table slot) pairs in a ring of
 * typed arrays, 12 bytes a version (with room for one to four times as many). Versions come in at the newest end (writes) and leave at the
 * oldest (compaction), so both ends cost O(1) and a version at any revision is a binary search
 * away. Only keys with a long history get one (version-chain.ts): a key with a few versions keeps
 * nothing beyond its rows.
 *
 * The ring doubles when full, and shrinks to twice its versions when under a quarter full (a copy
 * of the key's own versions, amortised over the pushes or drops that led to it): a key that kept a
 * million versions behind a snapshot does not keep their room once they are gone.
 */
export class VersionRing {
  private revisions: Float64Array;
  private slots: Int32Array;
  /** Ring position of the oldest version. */
  private start = 0;
  private count = 0;

  /** An empty ring with room for `versions` (the chain it is made for) and as many more. */
  constructor(versions: number) {
    this.revisions = new Float64Array(roomFor(versions));
    this.slots = new Int32Array(roomFor(versions));
  }

  get length(): number {
    return this.count;
  }

  /** The revision of the version at `position` (0: the oldest). */
  revision(position: number): number {
    return this.revisions[this.at(position)]!;
  }

  /** The version-table slot of the version at `position` (0: the oldest). */
  slot(position: number): number {
    return this.slots[this.at(position)]!;
  }

  /** Adds the newest version. */
  push(revision: number, slot: number): void {
    assert(this.count === 0 || this.revision(this.count - 1) < revision, "ring revisions must increase");
    if (this.count === this.slots.length) this.resize(this.slots.length * 2);
    const end = (this.start + this.count) & (this.slots.length - 1);
    this.revisions[end] = revision;
    this.slots[end] = slot;
    this.count++;
  }

  /** Forgets the `n` oldest versions. */
  dropOldest(n: number): void {
    assert(n >= 0 && n <= this.count, () => `cannot drop ${n} of ${this.count} versions`);
    this.start = (this.start + n) & (this.slots.length - 1);
    this.count -= n;
    if (this.slots.length > CAPACITY_MIN && this.count < this.slots.length / 4) this.resize(roomFor(this.count));
  }

  private at(position: number): number {
    return (this.start + position) & (this.slots.length - 1);
  }

  /** Moves the versions, oldest first, to the start of new arrays of `capacity`, a power of two. */
  private resize(capacity: number): void {
    this.revisions = this.moved(this.revisions, new Float64Array(capacity));
    this.slots = this.moved(this.slots, new Int32Array(capacity));
    this.start = 0;
  }

  /** `into` holding the versions of `from`, oldest first from its start. */
  private moved<T extends Float64Array | Int32Array>(from: T, into: T): T {
    const end = this.start + this.count;
    into.set(from.subarray(this.start, end)); // up to the arrays' end at most
    if (end > from.length) into.set(from.subarray(0, end - from.length), from.length - this.start);
    return into;
  }
}

/** A power of two at least twice `versions`: room to grow before the next copy. */
function roomFor(versions: number): number {
  return Math.max(CAPACITY_MIN, 2 ** Math.ceil(Math.log2(2 * versions)));
}

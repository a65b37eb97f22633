import { assert } from "../../../errors.ts";

/**
 * One key's versions by position, oldest first: (revision, version-table slot) pairs in a ring of
 * typed arrays, 12 bytes a version. Versions come in at the newest end (writes) and leave at the
 * oldest (compaction), so both ends cost O(1) and a version at any revision is a binary search
 * away. Only keys with a long history get one (version-chain.ts): a key with a few versions keeps
 * nothing beyond its rows.
 *
 * The ring doubles when full (a copy of the key's own versions, amortised over as many writes);
 * it never shrinks: a key whose history falls away loses its ring whole.
 */
export class VersionRing {
  private revisions: Float64Array;
  private slots: Int32Array;
  /** Ring position of the oldest version. */
  private start = 0;
  private count = 0;

  /** `capacity`: versions it holds before it first grows, a power of two. */
  constructor(capacity: number) {
    assert(capacity > 0 && (capacity & (capacity - 1)) === 0, `ring capacity ${capacity} is not a power of two`);
    this.revisions = new Float64Array(capacity);
    this.slots = new Int32Array(capacity);
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
    if (this.count === this.slots.length) this.grow();
    const end = (this.start + this.count) & (this.slots.length - 1);
    this.revisions[end] = revision;
    this.slots[end] = slot;
    this.count++;
  }

  /** Forgets the `n` oldest versions. */
  dropOldest(n: number): void {
    assert(n >= 0 && n <= this.count, `cannot drop ${n} of ${this.count} versions`);
    this.start = (this.start + n) & (this.slots.length - 1);
    this.count -= n;
  }

  private at(position: number): number {
    return (this.start + position) & (this.slots.length - 1);
  }

  /** Twice the room (called when full), the versions moved to its start in order. */
  private grow(): void {
    this.revisions = this.unwrapped(this.revisions, new Float64Array(this.revisions.length * 2));
    this.slots = this.unwrapped(this.slots, new Int32Array(this.slots.length * 2));
    this.start = 0;
  }

  /** `into` holding the full ring `from`, oldest first from its start. */
  private unwrapped<T extends Float64Array | Int32Array>(from: T, into: T): T {
    into.set(from.subarray(this.start));
    into.set(from.subarray(0, this.start), from.length - this.start);
    return into;
  }
}

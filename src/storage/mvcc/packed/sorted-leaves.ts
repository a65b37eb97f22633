import { assert } from "../../../errors.ts";
import { NONE } from "./version-table.ts";

const LEAF_MAX = 512;

/**
 * Entry ids in key order, for ordered walks, in leaves of at most `leafMax` ids (Int32Arrays). A
 * leaf is found by its fence — a key at or below all of its keys and above all keys of the leaf
 * before — among a short array of strings, then the place within it by comparing stored keys. So
 * an insert or a removal costs a binary search and a shift within one leaf, whatever the size:
 * no step ever rebuilds the whole order (the sorted array this replaced was re-merged every
 * sixteenth new key, 0.5 s at a million keys).
 *
 * A leaf that fills up splits in two; one that falls under a quarter joins a neighbour when the
 * two fit in one, so leaves stay at least about a quarter full on average. No writes happen
 * during a walk (reads over the store run to completion within a call).
 */
export class SortedLeaves {
  private leaves: Int32Array[];
  private lengths: number[] = [0];
  /** fences[i] ≤ every key of leaves[i] < fences[i + 1]; fences[0] is "", below every key. */
  private fences: string[] = [""];

  constructor(
    /** Entry `id`'s key compared with `key`, both beginning with the same `shared` units: negative when it sorts first. */
    private readonly compare: (id: number, key: string, shared: number) => number,
    private readonly keyOf: (id: number) => string,
    private readonly leafMax = LEAF_MAX,
  ) {
    assert(leafMax >= 2, "a leaf must hold at least two ids");
    this.leaves = [new Int32Array(leafMax)];
  }

  get allocatedBytes(): number {
    return this.leaves.length * this.leafMax * 4;
  }

  /** Adds `id`, whose key `key` is not present. */
  insert(id: number, key: string): void {
    let l = this.leafFor(key);
    if (this.lengths[l] === this.leafMax) {
      this.split(l);
      if (key >= this.fences[l + 1]!) l++;
    }
    const leaf = this.leaves[l]!;
    const length = this.lengths[l]!;
    const at = this.position(l, key);
    leaf.copyWithin(at + 1, at, length);
    leaf[at] = id;
    this.lengths[l] = length + 1;
  }

  /**
   * Adds `id`, whose key sorts after every key present (a restore in key order): no search, and the
   * leaves it fills are full, where inserts leave them half full.
   */
  append(id: number): void {
    let l = this.leaves.length - 1;
    if (this.lengths[l] === this.leafMax) {
      this.leaves.push(new Int32Array(this.leafMax));
      this.lengths.push(0);
      this.fences.push(this.keyOf(id));
      l++;
    }
    this.leaves[l]![this.lengths[l]!] = id;
    this.lengths[l]!++;
  }

  /** The id with the greatest key, or NONE when there is none. */
  last(): number {
    // Only a lone leaf is ever empty (an emptied leaf joins a neighbour), so this looks at one or two.
    for (let l = this.leaves.length - 1; l >= 0; l--) {
      const length = this.lengths[l]!;
      if (length > 0) return this.leaves[l]![length - 1]!;
    }
    return NONE;
  }

  /** Takes out `id`, whose key is `key`. */
  remove(id: number, key: string): void {
    const l = this.leafFor(key);
    const leaf = this.leaves[l]!;
    const length = this.lengths[l]!;
    const at = this.position(l, key);
    assert(at < length && leaf[at] === id, () => `entry ${id} is not where its key sorts`);
    leaf.copyWithin(at, at + 1, length);
    this.lengths[l] = length - 1;
    if (length - 1 < Math.max(1, this.leafMax >> 2)) this.join(l);
  }

  /** Ids with keys ≥ `from` (all without it), ascending. */
  *forward(from?: string): Generator<number> {
    let l = from === undefined ? 0 : this.leafFor(from);
    let i = from === undefined ? 0 : this.position(l, from);
    while (l < this.leaves.length) {
      const leaf = this.leaves[l]!;
      for (const length = this.lengths[l]!; i < length; i++) yield leaf[i]!;
      l++;
      i = 0;
    }
  }

  /** Ids with keys < `below` (all without it), descending. */
  *backward(below?: string): Generator<number> {
    let l = below === undefined ? this.leaves.length - 1 : this.leafFor(below);
    let i = (below === undefined ? this.lengths[l]! : this.position(l, below)) - 1;
    while (l >= 0) {
      const leaf = this.leaves[l]!;
      for (; i >= 0; i--) yield leaf[i]!;
      l--;
      if (l >= 0) i = this.lengths[l]! - 1;
    }
  }

  /** The last leaf whose fence is ≤ `key` (index keys: native string order is key order). */
  private leafFor(key: string): number {
    let low = 0;
    let high = this.fences.length - 1;
    while (low < high) {
      const mid = (low + high + 1) >>> 1;
      if (this.fences[mid]! <= key) low = mid;
      else high = mid - 1;
    }
    return low;
  }

  /**
   * The first place in leaf `l` whose key is ≥ `key`. Every key of the leaf, and `key`, lies between
   * its fence and the next: all begin with the two fences' common prefix, which no comparison of the
   * search reads again (keys that share long prefixes, as generated ones do, compared in full made
   * these comparisons an eighth of a write's time).
   */
  private position(l: number, key: string): number {
    const leaf = this.leaves[l]!;
    const upper = this.fences[l + 1];
    const shared = upper === undefined ? 0 : commonPrefix(this.fences[l]!, upper);
    let low = 0;
    let high = this.lengths[l]!;
    while (low < high) {
      const mid = (low + high) >>> 1;
      if (this.compare(leaf[mid]!, key, shared) < 0) low = mid + 1;
      else high = mid;
    }
    return low;
  }

  private split(l: number): void {
    const leaf = this.leaves[l]!;
    const half = this.leafMax >> 1;
    const upper = new Int32Array(this.leafMax);
    upper.set(leaf.subarray(half, this.leafMax));
    this.leaves.splice(l + 1, 0, upper);
    this.lengths.splice(l + 1, 0, this.leafMax - half);
    this.lengths[l] = half;
    this.fences.splice(l + 1, 0, this.keyOf(upper[0]!));
  }

  /** Folds an underfull leaf into a neighbour that has room for it (the next one first). */
  private join(l: number): void {
    const into =
      l + 1 < this.leaves.length && this.lengths[l]! + this.lengths[l + 1]! <= this.leafMax
        ? l
        : l > 0 && this.lengths[l - 1]! + this.lengths[l]! <= this.leafMax
          ? l - 1
          : -1;
    if (into === -1) return;
    // Leaf `into + 1` moves to the end of leaf `into`; its fence goes, and `into`'s fence still holds.
    this.leaves[into]!.set(this.leaves[into + 1]!.subarray(0, this.lengths[into + 1]!), this.lengths[into]!);
    this.lengths[into] = this.lengths[into]! + this.lengths[into + 1]!;
    this.leaves.splice(into + 1, 1);
    this.lengths.splice(into + 1, 1);
    this.fences.splice(into + 1, 1);
  }
}

/** How many units `a` and `b` begin with alike. */
function commonPrefix(a: string, b: string): number {
  const most = Math.min(a.length, b.length);
  let i = 0;
  while (i < most && a.charCodeAt(i) === b.charCodeAt(i)) i++;
  return i;
}

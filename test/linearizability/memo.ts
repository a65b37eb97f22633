/**
 * The configurations the search has already explored: (set of linearized operations, model state).
 * Reaching one again by another order of the same operations leads nowhere new, so the search
 * skips it; this is what turns the search's n! orders into at most 2^n × states configurations.
 *
 * The set is a bitset with an incremental Zobrist hash (XOR of one fixed 32-bit value per operation),
 * so adding or removing an operation costs O(1) and hashing a configuration does not read the set.
 */
export class LinearizedSet {
  readonly words: Uint32Array;
  hash = 0;

  constructor(size: number) {
    this.words = new Uint32Array(Math.ceil(size / 32));
  }

  /** Add or remove an operation (both flip its bit and its share of the hash). */
  toggle(op: number): void {
    this.words[op >>> 5]! ^= 1 << (op & 31);
    this.hash ^= zobrist(op);
  }
}

/** A fixed, well-mixed 32-bit value per index (the murmur3 finaliser). */
function zobrist(index: number): number {
  let h = Math.imul(index + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

export class Memo<S> {
  private readonly seen = new Map<number, { words: Uint32Array; state: S }[]>();
  size = 0;

  constructor(
    private readonly equal: (a: S, b: S) => boolean,
    private readonly hash: (state: S) => number,
  ) {}

  /** Remember the configuration; false when it was already there. */
  add(linearized: LinearizedSet, state: S): boolean {
    const key = (linearized.hash ^ Math.imul(this.hash(state), 0x27d4eb2d)) | 0;
    let bucket = this.seen.get(key);
    if (bucket === undefined) this.seen.set(key, (bucket = []));
    else if (bucket.some((c) => sameWords(c.words, linearized.words) && this.equal(c.state, state))) return false;
    bucket.push({ words: linearized.words.slice(), state });
    this.size++;
    return true;
  }
}

function sameWords(a: Uint32Array, b: Uint32Array): boolean {
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

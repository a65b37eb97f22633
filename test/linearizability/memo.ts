/**
 * The set of operations a partial linearization has placed, as two bitsets: those with a known
 * outcome and those whose outcome is unknown. Only the known ones are hashed (with an incremental
 * Zobrist hash, the XOR of one fixed 32-bit value per operation), so adding or removing an
 * operation costs O(1) and configurations that differ only in unknown operations share a bucket.
 */
export class LinearizedSet {
  /** The known operations' bits, then the unknown ones'. */
  readonly words: Uint32Array;
  readonly half: number;
  hash = 0;

  constructor(size: number) {
    this.half = Math.ceil(size / 32);
    this.words = new Uint32Array(2 * this.half);
  }

  /** Add or remove an operation. */
  toggle(op: number, unknown: boolean): void {
    this.words[(unknown ? this.half : 0) + (op >>> 5)]! ^= 1 << (op & 31);
    if (!unknown) this.hash ^= zobrist(op);
  }
}

/** A fixed, well-mixed 32-bit value per index (the murmur3 finaliser). */
function zobrist(index: number): number {
  let h = Math.imul(index + 1, 0x9e3779b1);
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) | 0;
}

/**
 * The configurations the search has entered: (placed operations, model state). Reaching one again
 * by another order of the same operations leads nowhere new, so the search skips it; this turns
 * the n! orders into at most 2^n × states configurations.
 *
 * A configuration is also skipped when one entered before has the same state, the same known
 * operations and a subset of its unknown ones: an unknown operation may never take effect, so
 * whatever can follow the larger one can follow the smaller one, whose search covers it.
 */
export class Memo<S> {
  private readonly seen = new Map<number, { words: Uint32Array; stateHash: number; state: S }[]>();
  size = 0;

  constructor(
    private readonly equal: (a: S, b: S) => boolean,
    private readonly hash: (state: S) => number,
  ) {}

  /** Remember the configuration; false when it, or one that covers it, was entered before. */
  add(placed: LinearizedSet, state: S): boolean {
    const stateHash = this.hash(state);
    const key = (placed.hash ^ Math.imul(stateHash, 0x27d4eb2d)) | 0;
    let bucket = this.seen.get(key);
    if (bucket === undefined) this.seen.set(key, (bucket = []));
    else if (bucket.some((c) => c.stateHash === stateHash && covers(c.words, placed) && this.equal(c.state, state))) {
      return false;
    }
    bucket.push({ words: placed.words.slice(), stateHash, state });
    this.size++;
    return true;
  }
}

/** The same known operations, and a subset of the unknown ones. */
function covers(words: Uint32Array, placed: LinearizedSet): boolean {
  const { half } = placed;
  for (let i = 0; i < half; i++) if (words[i] !== placed.words[i]) return false;
  for (let i = half; i < words.length; i++) if ((words[i]! & ~placed.words[i]!) !== 0) return false;
  return true;
}

/**
 * Rows of `width` numbers indexed by id, in typed-array chunks of a fixed number of rows: it grows a
 * chunk at a time, never by copying. Doubling flat arrays instead stopped the write that crossed a
 * power of two for as long as the copy (and faulting in the new memory) took: 130 ms for a million
 * version rows grown by half, 74 ms for the key index's three columns at 1 Mi keys.
 */
export class ChunkedRows {
  private readonly chunks: (Int32Array | Float64Array)[] = [];
  private readonly mask: number;

  constructor(
    private readonly make: (length: number) => Int32Array | Float64Array,
    private readonly chunkBits: number,
    private readonly width = 1,
  ) {
    this.mask = (1 << chunkBits) - 1;
  }

  get byteLength(): number {
    return this.chunks.length === 0 ? 0 : this.chunks.length * this.chunks[0]!.byteLength;
  }

  get(row: number, field = 0): number {
    return this.chunks[row >>> this.chunkBits]![(row & this.mask) * this.width + field]!;
  }

  set(row: number, value: number, field = 0): void {
    this.chunks[row >>> this.chunkBits]![(row & this.mask) * this.width + field] = value;
  }

  /** Adds chunks until row `row` exists. */
  reserve(row: number): void {
    while (row >>> this.chunkBits >= this.chunks.length) this.chunks.push(this.make((this.mask + 1) * this.width));
  }
}

/**
 * A column of doubles indexed by row that is NaN nearly everywhere (TTL deadlines: most keys have
 * none), in chunks like ChunkedRows' that exist only once a row in them holds a number: a store
 * without TTLs pays nothing for the column, where a field in every row cost 8 bytes a version.
 */
export class SparseColumn {
  private readonly chunks: (Float64Array | undefined)[] = [];
  private readonly mask: number;
  private chunkCount = 0;

  constructor(private readonly chunkBits: number) {
    this.mask = (1 << chunkBits) - 1;
  }

  get byteLength(): number {
    return this.chunkCount * (this.mask + 1) * 8;
  }

  /** The number at `row`, or NaN. */
  get(row: number): number {
    const chunk = this.chunks[row >>> this.chunkBits];
    return chunk === undefined ? Number.NaN : chunk[row & this.mask]!;
  }

  set(row: number, value: number): void {
    let chunk = this.chunks[row >>> this.chunkBits];
    if (chunk === undefined) {
      if (Number.isNaN(value)) return;
      chunk = new Float64Array(this.mask + 1).fill(Number.NaN);
      this.chunks[row >>> this.chunkBits] = chunk;
      this.chunkCount++;
    }
    chunk[row & this.mask] = value;
  }
}

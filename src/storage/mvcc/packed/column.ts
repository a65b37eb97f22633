/**
 * A number per entry id, in typed-array chunks of a fixed size: it grows a chunk at a time, never
 * by copying. Doubling flat arrays instead stopped the write that crossed a power of two for as
 * long as copying (and faulting in) the three columns of the key index took: 38 ms at 512 Ki keys,
 * 74 ms at 1 Mi.
 */
export class Column {
  private readonly chunks: (Int32Array | Float64Array)[] = [];
  private readonly mask: number;

  constructor(
    private readonly make: (length: number) => Int32Array | Float64Array,
    private readonly chunkBits = 14,
  ) {
    this.mask = (1 << chunkBits) - 1;
  }

  get byteLength(): number {
    return this.chunks.length === 0 ? 0 : this.chunks.length * this.chunks[0]!.byteLength;
  }

  get(id: number): number {
    return this.chunks[id >>> this.chunkBits]![id & this.mask]!;
  }

  /** Sets entry `id`'s value, adding chunks up to it first. */
  set(id: number, value: number): void {
    while (id >>> this.chunkBits >= this.chunks.length) this.chunks.push(this.make(this.mask + 1));
    this.chunks[id >>> this.chunkBits]![id & this.mask] = value;
  }
}

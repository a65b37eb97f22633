import { ByteReader, ByteWriter, FormatError } from "../../../io/format/bytes.ts";
import { HEADER_BYTES, sealed } from "./format.ts";

/**
 * A block's sizes are kept in Int32Arrays: a varint past this (a forged index, its CRC made good)
 * would wrap there, and a raw size that wrapped to a negative number once moved the block cache's
 * head backwards, over blocks it still held (a key of an intact block then read as absent).
 */
const BLOCK_BYTES_MAX = 2 ** 31 - 1;

/**
 * The block index: where each data block is and the last internal key it holds, so that a read
 * finds its one block by binary search. Frozen format (docs/internals/flsm-table-format.md):
 *
 *   varint n, then per block, in file order:
 *     varint key length, the key's bytes, varint revision   the block's last internal key
 *     varint offset, varint size                             the block's place in the file
 *     varint raw size                                        (version 2) 0: stored as built;
 *                                                            else compressed, and this many bytes
 *                                                            once decompressed (block-compression.ts)
 *   u32 CRC-32 of the bytes before it
 */
export class BlockIndexBuilder {
  private readonly out = new ByteWriter(4096);
  private count = 0;

  add(lastKey: Uint8Array, lastRevision: number, offset: number, size: number, rawSize: number): void {
    this.out.varint(lastKey.byteLength).raw(lastKey).varint(lastRevision).varint(offset).varint(size).varint(rawSize);
    this.count++;
  }

  /** The index section, CRC included. */
  finish(): Uint8Array {
    const body = this.out.written();
    return sealed(new ByteWriter(body.byteLength + 16).varint(this.count).raw(body));
  }
}

/**
 * The index read back, packed: the section's bytes kept as they are (each block's last key read in
 * place) and one typed array per field, some 30 bytes a block beside its key. An index is held for
 * every table while it is open, so its cost grows with the data: as a Uint8Array view and three
 * numbers in arrays per block, 4 GiB of 1 KiB values (a million blocks) held some 150 MB of heap.
 */
export class BlockIndex {
  private readonly keys: Buffer;
  private readonly keyStarts: Int32Array;
  private readonly keyEnds: Int32Array;
  private readonly lastRevisions: Float64Array;
  private readonly offsets: Float64Array;
  private readonly sizes: Int32Array;
  /** Per block, 0 when stored as built, else its size decompressed; absent in a version 1 index. */
  private readonly rawSizes: Int32Array | undefined;

  /**
   * From the section's bytes without their CRC (checked by the caller). The blocks must tile the
   * data region, HEADER_BYTES up to `dataEnd`; a block as built is at least `blockBytesMin` long,
   * a compressed one at least `storedBytesMin` long and `blockBytesMin` once decompressed.
   * `withRawSizes`: the index is version 2's.
   */
  constructor(
    payload: Uint8Array,
    dataEnd: number,
    blockBytesMin: number,
    storedBytesMin: number,
    withRawSizes: boolean,
  ) {
    const reader = new ByteReader(payload);
    const count = reader.varint();
    // Each block takes at least 4 bytes of the section: a count past that is damage, not an allocation to make.
    if (count > payload.byteLength / 4)
      throw new FormatError(`${count} blocks cannot fit in an index of ${payload.byteLength} bytes`);
    this.keys = Buffer.from(payload.buffer, payload.byteOffset, payload.byteLength);
    this.keyStarts = new Int32Array(count);
    this.keyEnds = new Int32Array(count);
    this.lastRevisions = new Float64Array(count);
    this.offsets = new Float64Array(count);
    this.sizes = new Int32Array(count);
    this.rawSizes = withRawSizes ? new Int32Array(count) : undefined;
    let expected = HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      const length = reader.varint();
      this.keyStarts[i] = reader.skip(length);
      this.keyEnds[i] = this.keyStarts[i]! + length;
      this.lastRevisions[i] = reader.varint();
      const offset = reader.varint();
      const size = reader.varint();
      const rawSize = withRawSizes ? reader.varint() : 0;
      if (offset !== expected)
        throw new FormatError(
          `block ${i} at ${offset} (${size} bytes) does not follow the block before it at ${expected}`,
        );
      if (rawSize === 0 ? size < blockBytesMin : size < storedBytesMin || rawSize < blockBytesMin)
        throw new FormatError(`block ${i} at ${offset} is too short: ${size} bytes, ${rawSize} decompressed`);
      if (size > BLOCK_BYTES_MAX || rawSize > BLOCK_BYTES_MAX)
        throw new FormatError(`block ${i} at ${offset} is too long: ${size} bytes, ${rawSize} decompressed`);
      this.offsets[i] = offset;
      this.sizes[i] = size;
      if (this.rawSizes !== undefined) this.rawSizes[i] = rawSize;
      expected = offset + size;
    }
    if (count === 0 || expected !== dataEnd || reader.remaining !== 0)
      throw new FormatError(`${count} blocks ending at ${expected} do not fill the data up to ${dataEnd}`);
  }

  get count(): number {
    return this.offsets.length;
  }

  /** The bytes it holds in memory: the section's and its arrays'. */
  get memoryBytes(): number {
    const arrays = [this.keyStarts, this.keyEnds, this.lastRevisions, this.offsets, this.sizes, this.rawSizes];
    return arrays.reduce((sum, array) => sum + (array?.byteLength ?? 0), this.keys.byteLength);
  }

  offset(block: number): number {
    return this.offsets[block] as number;
  }

  /** The block's bytes in the file. */
  size(block: number): number {
    return this.sizes[block] as number;
  }

  /** 0 when the block is stored as built; else its size once decompressed. */
  rawSize(block: number): number {
    return this.rawSizes?.[block] ?? 0;
  }

  /** The first block whose last internal key is at or after (key, revision); `count` when none. */
  find(key: Uint8Array, revision: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (this.compareLast(middle, key, revision) < 0) low = middle + 1;
      else high = middle;
    }
    return low;
  }

  /**
   * Block `i`'s last internal key against (key, revision) in internal-key order: keys ascending,
   * revisions descending (a revision of Infinity is before every version of its key).
   */
  private compareLast(i: number, key: Uint8Array, revision: number): number {
    const last = this.lastRevisions[i]!;
    return (
      this.keys.compare(key, 0, key.byteLength, this.keyStarts[i], this.keyEnds[i]) ||
      (last > revision ? -1 : last < revision ? 1 : 0)
    );
  }
}

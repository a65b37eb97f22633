import { ByteReader, ByteWriter, FormatError } from "../../../io/format/bytes.ts";
import { HEADER_BYTES, sealed } from "./format.ts";

/**
 * The largest block size an index may give (a forged index, its CRC made good, may give any): a raw
 * size that wrapped to a negative number in a 32-bit array once moved the block cache's head
 * backwards, over blocks it still held (a key of an intact block then read as absent).
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
 * The index read back, packed: the blocks' last keys copied end to end into one buffer, and per
 * block four numbers in typed arrays (where its key ends, its last revision, where it ends in the
 * file, its raw size), 16 bytes a block beside its key. An index is held for every table while it
 * is open, so its cost grows with the data: keeping the section's bytes whole (varints and all)
 * and six numbers a block, the indexes of a 4 GiB load held 64 MiB. A block's offset is where the
 * one before it ends, and its size the difference: the blocks tile the data region.
 */
export class BlockIndex {
  private readonly keys: Buffer;
  /** Block i's last key is keys[keyEnds[i - 1], keyEnds[i]) (keyEnds[-1] being 0). */
  private readonly keyEnds: Uint32Array;
  /** Uint32 while every revision fits (the usual case), else Float64. */
  private lastRevisions: Uint32Array | Float64Array;
  /** Where each block ends in the file: Uint32 for a table under 4 GiB, else Float64. */
  private readonly ends: Uint32Array | Float64Array;
  /** Per block, 0 when stored as built, else its size decompressed; absent in a version 1 index. */
  private readonly rawSizes: Uint32Array | undefined;

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
    // The keys are copied as they are read, into room the section bounds, then trimmed.
    const keys = new Uint8Array(payload.byteLength);
    let keyBytes = 0;
    this.keyEnds = new Uint32Array(count);
    this.lastRevisions = new Uint32Array(count);
    this.ends = dataEnd <= 0xffff_ffff ? new Uint32Array(count) : new Float64Array(count);
    this.rawSizes = withRawSizes ? new Uint32Array(count) : undefined;
    let expected = HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      const length = reader.varint();
      const keyAt = reader.skip(length);
      keys.set(payload.subarray(keyAt, keyAt + length), keyBytes);
      keyBytes += length;
      this.keyEnds[i] = keyBytes;
      this.setLastRevision(i, reader.varint());
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
      expected = offset + size;
      this.ends[i] = expected;
      if (this.rawSizes !== undefined) this.rawSizes[i] = rawSize;
    }
    if (count === 0 || expected !== dataEnd || reader.remaining !== 0)
      throw new FormatError(`${count} blocks ending at ${expected} do not fill the data up to ${dataEnd}`);
    this.keys = Buffer.from(keys.slice(0, keyBytes).buffer);
  }

  get count(): number {
    return this.ends.length;
  }

  /** The bytes it holds in memory: its keys' and its arrays'. */
  get memoryBytes(): number {
    const arrays = [this.keyEnds, this.lastRevisions, this.ends, this.rawSizes];
    return arrays.reduce((sum, array) => sum + (array?.byteLength ?? 0), this.keys.byteLength);
  }

  offset(block: number): number {
    return block === 0 ? HEADER_BYTES : (this.ends[block - 1] as number);
  }

  /** The block's bytes in the file. */
  size(block: number): number {
    return (this.ends[block] as number) - this.offset(block);
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

  /** Stores block `i`'s last revision, widening the array the first time one does not fit 32 bits. */
  private setLastRevision(i: number, revision: number): void {
    if (revision > 0xffff_ffff && this.lastRevisions instanceof Uint32Array)
      this.lastRevisions = Float64Array.from(this.lastRevisions);
    this.lastRevisions[i] = revision;
  }

  /**
   * Block `i`'s last internal key against (key, revision) in internal-key order: keys ascending,
   * revisions descending (a revision of Infinity is before every version of its key).
   */
  private compareLast(i: number, key: Uint8Array, revision: number): number {
    const last = this.lastRevisions[i]!;
    const keyStart = i === 0 ? 0 : this.keyEnds[i - 1]!;
    return (
      this.keys.compare(key, 0, key.byteLength, keyStart, this.keyEnds[i]) ||
      (last > revision ? -1 : last < revision ? 1 : 0)
    );
  }
}

import { ByteReader, ByteWriter, FormatError } from "../../../io/format/bytes.ts";
import { compareInternal, HEADER_BYTES, sealed } from "./format.ts";

/**
 * The block index: where each data block is and the last internal key it holds, so that a read
 * finds its one block by binary search. Frozen format (docs/internals/flsm-table-format.md):
 *
 *   varint n, then per block, in file order:
 *     varint key length, the key's bytes, varint revision   the block's last internal key
 *     varint offset, varint size                             the block's place in the file
 *   u32 CRC-32 of the bytes before it
 */
export class BlockIndexBuilder {
  private readonly out = new ByteWriter(4096);
  private count = 0;

  add(lastKey: Uint8Array, lastRevision: number, offset: number, size: number): void {
    this.out.varint(lastKey.byteLength).raw(lastKey).varint(lastRevision).varint(offset).varint(size);
    this.count++;
  }

  /** The index section, CRC included. */
  finish(): Uint8Array {
    const body = this.out.written();
    return sealed(new ByteWriter(body.byteLength + 16).varint(this.count).raw(body));
  }
}

export class BlockIndex {
  private readonly lastKeys: Uint8Array[] = [];
  private readonly lastRevisions: number[] = [];
  private readonly offsets: number[] = [];
  private readonly sizes: number[] = [];

  /**
   * From the section's bytes without their CRC (checked by the caller). The blocks must tile the
   * data region, HEADER_BYTES up to `dataEnd`, each at least `blockBytesMin` long.
   */
  constructor(payload: Uint8Array, dataEnd: number, blockBytesMin: number) {
    const reader = new ByteReader(payload);
    const count = reader.varint();
    let expected = HEADER_BYTES;
    for (let i = 0; i < count; i++) {
      this.lastKeys.push(reader.raw(reader.varint()));
      this.lastRevisions.push(reader.varint());
      const offset = reader.varint();
      const size = reader.varint();
      if (offset !== expected || size < blockBytesMin)
        throw new FormatError(
          `block ${i} at ${offset} (${size} bytes) does not follow the block before it at ${expected}`,
        );
      this.offsets.push(offset);
      this.sizes.push(size);
      expected = offset + size;
    }
    if (count === 0 || expected !== dataEnd || reader.remaining !== 0)
      throw new FormatError(`${count} blocks ending at ${expected} do not fill the data up to ${dataEnd}`);
  }

  get count(): number {
    return this.offsets.length;
  }

  offset(block: number): number {
    return this.offsets[block] as number;
  }

  size(block: number): number {
    return this.sizes[block] as number;
  }

  /** The first block whose last internal key is at or after (key, revision); `count` when none. */
  find(key: Uint8Array, revision: number): number {
    let low = 0;
    let high = this.count;
    while (low < high) {
      const middle = (low + high) >> 1;
      if (compareInternal(this.lastKeys[middle] as Uint8Array, this.lastRevisions[middle] as number, key, revision) < 0)
        low = middle + 1;
      else high = middle;
    }
    return low;
  }
}

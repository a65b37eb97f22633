import { ByteReader } from "../../../../src/io/format/bytes.ts";
import { BlockIndexBuilder } from "../../../../src/storage/flsm/table/block-index.ts";
import { encodeFooter } from "../../../../src/storage/flsm/table/format.ts";

/**
 * Tables taken apart and put back together as docs/internals/flsm-table-format.md lays them out, for
 * the tests that forge or damage one: where each part lies is read from the footer and the index
 * as the format documents them, so these helpers also hold the layout to its word.
 */
export const FOOTER_BYTES = 80;
const HEADER_BYTES = 8;

/** Section offsets from the footer: index, bloom, ttl, properties. */
export function sections(file: Uint8Array): { index: number; bloom: number; ttl: number; properties: number } {
  const view = new DataView(file.buffer, file.byteOffset + file.byteLength - FOOTER_BYTES, FOOTER_BYTES);
  const at = (i: number) => Number(view.getBigUint64(16 * i, true));
  return { index: at(0), bloom: at(1), ttl: at(2), properties: at(3) };
}

export interface IndexedBlock {
  readonly lastKey: Uint8Array;
  readonly lastRevision: number;
  readonly offset: number;
  readonly size: number;
  readonly rawSize: number;
}

/** The index section's entries, read as the format lays them out (version 2). */
export function indexOf(file: Uint8Array): IndexedBlock[] {
  const reader = new ByteReader(file.subarray(sections(file).index));
  return Array.from({ length: reader.varint() }, () => ({
    lastKey: reader.raw(reader.varint()),
    lastRevision: reader.varint(),
    offset: reader.varint(),
    size: reader.varint(),
    rawSize: reader.varint(),
  }));
}

/** A data block as the file stores it, and the raw size its index gives (0: stored as built). */
export interface StoredBlock {
  readonly bytes: Uint8Array;
  readonly rawSize: number;
}

/**
 * `file` with `change` made to its data blocks (block `i` of the index): the blocks after a changed
 * one move, and the index, the sections' offsets and the footer (CRCs good) follow them.
 */
export function rebuilt(file: Uint8Array, change: (block: StoredBlock, i: number) => StoredBlock): Uint8Array {
  const at = sections(file);
  const index = new BlockIndexBuilder();
  const parts = [file.subarray(0, HEADER_BYTES)];
  let offset = HEADER_BYTES;
  for (const [i, block] of indexOf(file).entries()) {
    const { bytes, rawSize } = change(
      { bytes: file.subarray(block.offset, block.offset + block.size), rawSize: block.rawSize },
      i,
    );
    index.add(block.lastKey, block.lastRevision, offset, bytes.byteLength, rawSize);
    parts.push(bytes);
    offset += bytes.byteLength;
  }
  const indexBytes = index.finish();
  const footerAt = file.byteLength - FOOTER_BYTES;
  // The sections after the index keep their bytes; they move by as much as the data and the index did.
  const moved = offset + indexBytes.byteLength - at.bloom;
  const section = (start: number, end: number) => ({ offset: start + moved, size: end - start });
  const footer = encodeFooter({
    index: { offset, size: indexBytes.byteLength },
    bloom: section(at.bloom, at.ttl),
    ttl: section(at.ttl, at.properties),
    properties: section(at.properties, footerAt),
  });
  return Buffer.concat([...parts, indexBytes, file.subarray(at.bloom, footerAt), footer]);
}

/** A compressed block as the format document says: a zstd frame, then the u32 CRC-32 of the frame. */
export function framed(frame: Uint8Array): Uint8Array {
  const stored = new Uint8Array(frame.byteLength + 4);
  stored.set(frame);
  new DataView(stored.buffer).setUint32(frame.byteLength, Bun.hash.crc32(frame), true);
  return stored;
}

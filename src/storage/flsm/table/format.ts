import { ByteReader, ByteWriter } from "../../../io/format/bytes.ts";
import { corruptionError, decodeAt } from "../../../io/format/corruption.ts";
import type { ReadFile } from "../../../io/fs/file-system.ts";

/**
 * The sorted table file (`<number>.sst`). Frozen format; docs/internals/flsm-table-format.md
 * describes every byte. All integers little-endian; a varint is ByteWriter's (unsigned LEB128).
 *
 *   0                   8 bytes  magic "HKVTABLE"
 *   8                   data blocks, back to back (block.ts)
 *   index.offset        block index section (block-index.ts)
 *   bloom.offset        Bloom filter section (bloom.ts)
 *   ttl.offset          TTL section (ttl-section.ts)
 *   properties.offset   properties section (properties.ts)
 *   size - 80           footer:
 *                         0  u64 index offset     8  u64 index size
 *                        16  u64 bloom offset    24  u64 bloom size
 *                        32  u64 ttl offset      40  u64 ttl size
 *                        48  u64 properties off  56  u64 properties size
 *                        64  u32 format version
 *                        68  u32 CRC-32 of footer bytes 0..68
 *                        72  8 bytes magic "HKVTABLE"
 *
 * Every data block and every section ends in a u32 CRC-32 (Bun.hash.crc32) of its bytes before it.
 * The magic at both ends tells a foreign file (bad magic at the start) from a truncated one (the
 * start is right, the end is not).
 */
export const TABLE_MAGIC = new TextEncoder().encode("HKVTABLE");
/** The version this build writes. Version 1 (no compressed blocks, no raw sizes in the index) is still read. */
export const TABLE_FORMAT_VERSION = 2;
const OLDEST_READABLE_VERSION = 1;
export const HEADER_BYTES = TABLE_MAGIC.byteLength;
export const FOOTER_BYTES = 80;
export const CRC_BYTES = 4;
const FOOTER_VERSION_AT = 64;
const FOOTER_CRC_AT = 68;
const FOOTER_MAGIC_AT = 72;

export interface Section {
  readonly offset: number;
  readonly size: number;
}

export interface Footer {
  readonly version: number;
  readonly index: Section;
  readonly bloom: Section;
  readonly ttl: Section;
  readonly properties: Section;
}

/** Appends the CRC-32 of everything `writer` holds: a section or a block, ready to append. */
export function sealed(writer: ByteWriter): Uint8Array {
  return writer.u32(Bun.hash.crc32(writer.written())).written().slice();
}

/** Whether `bytes` (a block or a section, CRC last) is as written. */
export function crcHolds(bytes: Uint8Array): boolean {
  if (bytes.byteLength < CRC_BYTES) return false;
  const end = bytes.byteLength - CRC_BYTES;
  return (
    new DataView(bytes.buffer, bytes.byteOffset + end, CRC_BYTES).getUint32(0, true) ===
    Bun.hash.crc32(bytes.subarray(0, end))
  );
}

/** Reads `size` bytes at `offset`; a file that ends before them is damaged (cut short). */
export function readExactly(file: ReadFile, path: string, offset: number, size: number, what: string): Uint8Array {
  const bytes = new Uint8Array(size);
  readInto(file, path, offset, bytes, what);
  return bytes;
}

/** Fills `into` from `offset` of the file; a file that ends first is damage (E_CORRUPT) naming `what`. */
export function readInto(file: ReadFile, path: string, offset: number, into: Uint8Array, what: string): void {
  const read = file.readAt(into, offset);
  if (read < into.byteLength) throw corruptionError(path, offset + read, `the file ends inside the ${what}`);
}

/** A section's bytes without their CRC, once the CRC holds. */
export function readSection(file: ReadFile, path: string, section: Section, what: string): Uint8Array {
  const bytes = readExactly(file, path, section.offset, section.size, what);
  if (!crcHolds(bytes)) throw corruptionError(path, section.offset, `the ${what} fails its checksum`);
  return bytes.subarray(0, bytes.byteLength - CRC_BYTES);
}

export function encodeFooter(footer: Omit<Footer, "version">): Uint8Array {
  const writer = new ByteWriter(FOOTER_BYTES);
  for (const section of [footer.index, footer.bloom, footer.ttl, footer.properties])
    writer.u64(section.offset).u64(section.size);
  writer.u32(TABLE_FORMAT_VERSION);
  writer.u32(Bun.hash.crc32(writer.written()));
  return writer.raw(TABLE_MAGIC).written().slice();
}

function hasMagic(bytes: Uint8Array, at: number): boolean {
  return TABLE_MAGIC.every((byte, i) => bytes[at + i] === byte);
}

/**
 * Checks the start and the end of a table of `fileBytes` bytes, given its first HEADER_BYTES and its
 * last FOOTER_BYTES, and returns where its sections are. The order of the checks names the damage:
 * a foreign file, a truncated one, a damaged footer, a version this build cannot read.
 */
export function decodeFooter(path: string, fileBytes: number, header: Uint8Array, bytes: Uint8Array): Footer {
  const at = fileBytes - FOOTER_BYTES;
  if (!hasMagic(header, 0)) throw corruptionError(path, 0, "not a HomeKV table (bad magic at the start)");
  if (!hasMagic(bytes, FOOTER_MAGIC_AT))
    throw corruptionError(
      path,
      at + FOOTER_MAGIC_AT,
      "no table magic at the end: the file is truncated or its footer damaged",
    );
  const view = new DataView(bytes.buffer, bytes.byteOffset, FOOTER_BYTES);
  if (view.getUint32(FOOTER_CRC_AT, true) !== Bun.hash.crc32(bytes.subarray(0, FOOTER_CRC_AT)))
    throw corruptionError(path, at, "the footer fails its checksum");
  const version = view.getUint32(FOOTER_VERSION_AT, true);
  if (version < OLDEST_READABLE_VERSION || version > TABLE_FORMAT_VERSION)
    throw corruptionError(
      path,
      at + FOOTER_VERSION_AT,
      `table format version ${version} is not supported (this build reads ${OLDEST_READABLE_VERSION} to ${TABLE_FORMAT_VERSION})`,
    );
  const reader = new ByteReader(bytes);
  const section = (): Section => ({ offset: reader.u64(), size: reader.u64() });
  const footer: Footer = decodeAt(path, at, () => ({
    version,
    index: section(),
    bloom: section(),
    ttl: section(),
    properties: section(),
  }));
  // The sections are back to back between the data blocks and the footer.
  const order = [footer.index, footer.bloom, footer.ttl, footer.properties];
  let end = footer.index.offset;
  const fits = end >= HEADER_BYTES && order.every((s) => s.offset === end && s.size >= CRC_BYTES && (end += s.size));
  if (!fits || end !== at) throw corruptionError(path, at, "the footer's sections do not tile the file");
  return footer;
}

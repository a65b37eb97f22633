import { corruptionError } from "../../../io/format/corruption.ts";
import { CRC_BYTES, crcHolds } from "./format.ts";

/** How a table's writer stores its data blocks: zstd where it pays, or every block as built. */
export const BLOCK_COMPRESSIONS = ["zstd", "none"] as const;
export type BlockCompression = (typeof BLOCK_COMPRESSIONS)[number];

/**
 * zstd's fastest level. Compression runs in the flush and compaction Workers, and level 3 took a
 * third longer here for blocks no smaller (53% of 4 KiB either way; values half random, half
 * repeated, as db_bench's).
 */
const ZSTD_LEVEL = 1;

/**
 * A block is stored compressed only when that saves at least an eighth of it, as LevelDB decides:
 * below that, a read would decompress for almost nothing.
 */
const SAVING_MIN_SHARE = 8;

/** A data block as it goes to the file. `rawSize` is 0 when it is stored as built. */
export interface StoredBlock {
  readonly bytes: Uint8Array;
  readonly rawSize: number;
}

/**
 * The data block `raw` (block-builder.ts, its own CRC last) as stored: the zstd frame of all of it
 * followed by a u32 CRC-32 of that frame, or `raw` itself when compression would not pay. The outer
 * CRC names damage to the stored bytes before anything is decompressed; the inner one still checks
 * the block once decompressed.
 */
export function packBlock(raw: Uint8Array, compression: BlockCompression): StoredBlock {
  if (compression === "none") return { bytes: raw, rawSize: 0 };
  const frame = Bun.zstdCompressSync(raw, { level: ZSTD_LEVEL });
  const size = frame.byteLength + CRC_BYTES;
  if (size > raw.byteLength - raw.byteLength / SAVING_MIN_SHARE) return { bytes: raw, rawSize: 0 };
  const bytes = new Uint8Array(size);
  bytes.set(frame);
  new DataView(bytes.buffer).setUint32(frame.byteLength, Bun.hash.crc32(frame), true);
  return { bytes, rawSize: raw.byteLength };
}

/**
 * Fills `into` (the block's raw size) from a compressed block's stored bytes, read at `offset` of the
 * table `path`. Damage raises E_CORRUPT naming both: a failed CRC, bytes that are not one zstd frame
 * declaring the index's size (checked before zstd runs: see declaredContentSize), or a frame zstd
 * refuses.
 */
export function unpackBlock(stored: Uint8Array, into: Uint8Array, path: string, offset: number): void {
  if (!crcHolds(stored)) throw corruptionError(path, offset, "a compressed data block fails its checksum");
  const frame = stored.subarray(0, stored.byteLength - CRC_BYTES);
  const declared = declaredContentSize(frame);
  if (declared !== into.byteLength)
    throw corruptionError(
      path,
      offset,
      declared === undefined
        ? "a compressed data block is not one zstd frame that declares its size"
        : `a compressed data block's frame declares ${declared} bytes, not the ${into.byteLength} its index says`,
    );
  let raw: Uint8Array;
  try {
    raw = Bun.zstdDecompressSync(frame);
  } catch (error) {
    throw corruptionError(path, offset, `a compressed data block does not decompress (${(error as Error).message})`);
  }
  // zstd holds a frame to the size it declares; were it not to, `set` would throw a RangeError.
  if (raw.byteLength !== into.byteLength)
    throw corruptionError(
      path,
      offset,
      `a compressed data block decompresses to ${raw.byteLength} bytes, not the ${into.byteLength} its index says`,
    );
  into.set(raw);
}

/** A zstd frame's first four bytes, little-endian (RFC 8878, 3.1.1). */
const ZSTD_MAGIC = [0x28, 0xb5, 0x2f, 0xfd];
/** Frame_Content_Size's bytes by the descriptor's top two bits (the first: 1 in a single segment, else 0). */
const CONTENT_SIZE_BYTES = [0, 2, 4, 8];
const DICTIONARY_ID_BYTES = [0, 1, 2, 4];
const BLOCK_HEADER_BYTES = 3;
const RLE_BLOCK = 1;
const RESERVED_BLOCK = 3;

/**
 * The content size `frame`'s header declares, when `frame` is exactly one zstd frame (its block
 * headers walked to its end) and declares one; else undefined. Bun.zstdDecompressSync sizes its
 * output by what the frames declare, and grows it without bound when one declares nothing (here a
 * frame of 36 KB became 1 GiB before any size could be checked): a frame the CRC lets through
 * must not make a read allocate more than its index says. ZSTD_compress, which Bun.zstdCompressSync
 * runs, always writes the size. What zstd itself refuses (a reserved bit, a dictionary) is left to it.
 */
function declaredContentSize(frame: Uint8Array): number | undefined {
  if (frame.byteLength < 6 || ZSTD_MAGIC.some((byte, i) => frame[i] !== byte)) return undefined;
  const descriptor = frame[4]!;
  const singleSegment = (descriptor & 0x20) !== 0;
  const sizeFlag = descriptor >> 6;
  const sizeBytes = sizeFlag === 0 && singleSegment ? 1 : CONTENT_SIZE_BYTES[sizeFlag]!;
  if (sizeBytes === 0) return undefined;
  let at = 5 + (singleSegment ? 0 : 1) + DICTIONARY_ID_BYTES[descriptor & 3]!;
  if (at + sizeBytes > frame.byteLength) return undefined;
  let size = 0;
  for (let i = sizeBytes - 1; i >= 0; i--) size = size * 256 + frame[at + i]!;
  if (sizeBytes === 2) size += 256;
  at += sizeBytes;
  for (let last = false; !last; ) {
    if (at + BLOCK_HEADER_BYTES > frame.byteLength) return undefined;
    const header = frame[at]! | (frame[at + 1]! << 8) | (frame[at + 2]! << 16);
    const type = (header >> 1) & 3;
    if (type === RESERVED_BLOCK) return undefined;
    last = (header & 1) !== 0;
    at += BLOCK_HEADER_BYTES + (type === RLE_BLOCK ? 1 : header >>> 3);
  }
  const checksumBytes = descriptor & 0x04 ? 4 : 0;
  return at + checksumBytes === frame.byteLength ? size : undefined;
}

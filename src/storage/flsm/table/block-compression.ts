import { corruptionError } from "../../../io/format/corruption.ts";
import { CRC_BYTES, crcHolds } from "./format.ts";

/** How a table's writer stores its data blocks: zstd where it pays, or every block as built. */
export const BLOCK_COMPRESSIONS = ["zstd", "none"] as const;
export type BlockCompression = (typeof BLOCK_COMPRESSIONS)[number];

/**
 * zstd's fastest level. Compression runs in the flush and compaction Workers, and level 3 took 30%
 * longer here for a block only 1% smaller (values half random, half repeated, as db_bench's).
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
 * table `path`. Damage raises E_CORRUPT naming both: a failed CRC, a frame zstd refuses, or one that
 * decompresses to another size than the index says.
 */
export function unpackBlock(stored: Uint8Array, into: Uint8Array, path: string, offset: number): void {
  if (!crcHolds(stored)) throw corruptionError(path, offset, "a compressed data block fails its checksum");
  let raw: Uint8Array;
  try {
    raw = Bun.zstdDecompressSync(stored.subarray(0, stored.byteLength - CRC_BYTES));
  } catch (error) {
    throw corruptionError(path, offset, `a compressed data block does not decompress (${(error as Error).message})`);
  }
  if (raw.byteLength !== into.byteLength)
    throw corruptionError(
      path,
      offset,
      `a compressed data block decompresses to ${raw.byteLength} bytes, not the ${into.byteLength} its index says`,
    );
  into.set(raw);
}

import { assert } from "../../errors.ts";

/** Most partitions a cluster may be created with: far more than a few hundred nodes ever need. */
export const PARTITIONS_MAX = 65_536;

const TWO_POW_32 = 2 ** 32;

/**
 * Which of `partitions` equal ranges of the 64-bit hash space holds a key (Dynamo's "Q equal
 * partitions"). The hash is xxHash64 with seed 0 over the key's bytes: a frozen format, since a
 * client that routes itself must compute the same partition as every server, for as long as a
 * cluster lives.
 *
 *   partitions 4:  [0, 2^62) → 0   [2^62, 2^63) → 1   [2^63, 3·2^62) → 2   [3·2^62, 2^64) → 3
 *
 * The partition is floor(hash · partitions / 2^64), computed exactly from the hash's two 32-bit
 * halves: hi · partitions stays below 2^53, so no double rounds.
 */
export function partitionOf(key: Uint8Array, partitions: number): number {
  assert(
    Number.isInteger(partitions) && partitions >= 1 && partitions <= PARTITIONS_MAX,
    () => `partitions must be an integer in [1, ${PARTITIONS_MAX}], got ${partitions}`,
  );
  const hash = Bun.hash.xxHash64(key);
  const hi = Number(hash >> 32n);
  const lo = Number(hash & 0xffff_ffffn);
  return Math.floor((hi * partitions + Math.floor((lo * partitions) / TWO_POW_32)) / TWO_POW_32);
}

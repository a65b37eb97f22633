import { expect, test } from "bun:test";
import { BlockIndex, BlockIndexBuilder } from "../../../../src/storage/flsm/table/block-index.ts";
import { CRC_BYTES, HEADER_BYTES } from "../../../../src/storage/flsm/table/format.ts";
import { bytes } from "../../../helpers/bytes.ts";

/** An index of blocks of `sizes` from HEADER_BYTES on, block i's last key `k<i>` at `revisions[i]`, read back. */
function indexOf(sizes: readonly number[], revisions: readonly number[]) {
  const builder = new BlockIndexBuilder();
  let offset = HEADER_BYTES;
  sizes.forEach((size, i) => {
    builder.add(bytes(`k${i}`), revisions[i]!, offset, size, i % 2 === 0 ? 0 : size - 1);
    offset += size;
  });
  const section = builder.finish();
  return new BlockIndex(section.subarray(0, section.byteLength - CRC_BYTES), offset, 1, 1, true);
}

test("a table past 4 GiB and revisions past 2^32 read back whole: the index widens what 32 bits cannot hold", () => {
  const big = 2 ** 31 - 1;
  const revisions = [2 ** 32 - 2, 2 ** 32 - 1, 2 ** 32, 2 ** 40];
  const index = indexOf([big, big, big, 100], revisions);
  expect(index.count).toBe(4);
  expect([0, 1, 2, 3].map((i) => index.offset(i))).toEqual([
    HEADER_BYTES,
    HEADER_BYTES + big,
    HEADER_BYTES + 2 * big,
    HEADER_BYTES + 3 * big,
  ]);
  expect([0, 1, 2, 3].map((i) => index.size(i))).toEqual([big, big, big, 100]);
  expect([0, 1, 2, 3].map((i) => index.rawSize(i))).toEqual([0, big - 1, 0, 99]);
  // Each block's last internal key, found exactly, and one revision past it leads to the next block.
  revisions.forEach((revision, i) => {
    expect(index.find(bytes(`k${i}`), revision)).toBe(i);
    expect(index.find(bytes(`k${i}`), revision - 1)).toBe(i + 1);
  });
});

test("a small index keeps 32-bit numbers and its keys end to end: 16 bytes a block beside its key", () => {
  const index = indexOf([40, 50, 60], [7, 8, 9]);
  expect(index.memoryBytes).toBe("k0k1k2".length + 3 * 16);
  expect([0, 1, 2].map((i) => [index.offset(i), index.size(i)])).toEqual([
    [HEADER_BYTES, 40],
    [HEADER_BYTES + 40, 50],
    [HEADER_BYTES + 90, 60],
  ]);
  expect(index.find(bytes("k1"), 100)).toBe(1);
  expect(index.find(bytes("k3"), 1)).toBe(3);
});

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { PARTITIONS_MAX, partitionOf } from "../../../src/cluster/ring/partition-of.ts";

const bytes = (text: string) => new TextEncoder().encode(text);

describe("partitionOf", () => {
  test("xxHash64 (seed 0) of the key, cut into equal ranges: the frozen values of a few keys", () => {
    // xxHash64("a") = 0xd24ec4f1a98c6e5b: in the upper half of the hash space, the 210th of 256 ranges.
    expect(Bun.hash.xxHash64(bytes("a"))).toBe(0xd24ec4f1a98c6e5bn);
    expect(partitionOf(bytes("a"), 2)).toBe(1);
    expect(partitionOf(bytes("a"), 256)).toBe(0xd2);
    expect(partitionOf(bytes("a"), 1)).toBe(0);
    expect(partitionOf(bytes(""), PARTITIONS_MAX)).toBe(Number(Bun.hash.xxHash64(new Uint8Array(0)) >> 48n));
  });

  test("equals floor(hash · partitions / 2^64) computed in big integers, for any key and partition count", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.integer({ min: 1, max: PARTITIONS_MAX }), (key, partitions) => {
        const exact = Number((Bun.hash.xxHash64(key) * BigInt(partitions)) >> 64n);
        expect(partitionOf(key, partitions)).toBe(exact);
      }),
      { numRuns: 2000 },
    );
  });

  test("100,000 keys over 64 partitions: every partition within 10% of the mean (4 standard deviations of a fair hash)", () => {
    const counts = new Array<number>(64).fill(0);
    for (let index = 0; index < 100_000; index += 1) {
      const partition = partitionOf(bytes(`user:${index}`), 64);
      counts[partition] = (counts[partition] ?? 0) + 1;
    }
    const mean = 100_000 / 64;
    for (const count of counts) expect(Math.abs(count - mean)).toBeLessThan(mean * 0.1);
  });

  test("a partition count out of range is refused, naming the range", () => {
    expect(() => partitionOf(bytes("a"), 0)).toThrow(/partitions must be an integer in \[1, 65536\]/);
    expect(() => partitionOf(bytes("a"), 1.5)).toThrow(/partitions must be/);
    expect(() => partitionOf(bytes("a"), PARTITIONS_MAX + 1)).toThrow(/partitions must be/);
  });
});

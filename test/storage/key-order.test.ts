import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { compareKeys, fromIndexKey, prefixEnd, toIndexKey } from "../../src/storage/mvcc/key-order.ts";

const byteOrder = (a: string, b: string) => Math.sign(Buffer.compare(Buffer.from(a, "utf8"), Buffer.from(b, "utf8")));
const keyOrder = (a: string, b: string) => Math.sign(compareKeys(a, b));
const codePoints = (s: string) => [...s].map((c) => `U+${c.codePointAt(0)!.toString(16).toUpperCase()}`).join(" ");

// Uniform code points are almost all astral, so two random strings would rarely put a surrogate
// against U+E000..U+FFFF at their first difference; weight every range the ranking treats apart.
const codePoint = fc
  .oneof(
    fc.integer({ min: 0x00, max: 0x7f }),
    fc.integer({ min: 0x80, max: 0xd7ff }),
    fc.constantFrom(0xd7ff, 0xe000, 0xfffd, 0xffff, 0x10000, 0x10ffff),
    fc.integer({ min: 0xe000, max: 0xffff }),
    fc.integer({ min: 0x10000, max: 0x10ffff }),
  )
  .map((cp) => String.fromCodePoint(cp));
const key = fc.oneof(fc.string({ unit: codePoint, maxLength: 6 }), fc.string({ unit: "binary", maxLength: 6 }));
// A shared prefix moves the first difference away from index 0 and makes equal strings likely.
const keyPair = fc.tuple(key, key, key).map(([prefix, a, b]) => [prefix + a, prefix + b] as const);

describe("compareKeys", () => {
  test("agrees with Buffer.compare of the UTF-8 encodings", () => {
    fc.assert(
      fc.property(keyPair, ([a, b]) => {
        expect(keyOrder(a, b)).toBe(byteOrder(a, b));
        expect(keyOrder(b, a)).toBe(byteOrder(b, a));
      }),
      { numRuns: 5_000 },
    );
  });

  test.each(
    [
      ["\u{10000}", "\u{E000}"], // `<` on UTF-16 units would say the opposite
      ["\u{10FFFF}", "\u{FFFF}"],
      ["a\u{1F600}", "a\u{FFFD}"],
      ["\u{FFFF}", "\u{E000}"],
      ["\u{E000}", "\u{D7FF}"], // both sides of the surrogate gap in the BMP
      ["\u{1F601}", "\u{1F600}"], // same high surrogate, different low surrogate
      ["ab", "a"], // a proper prefix sorts first
      ["b", "a\u{10FFFF}"],
    ].map(([later, earlier]) => [`${codePoints(later!)} > ${codePoints(earlier!)}`, later!, earlier!]),
  )("%s", (_, later, earlier) => {
    expect(byteOrder(later, earlier)).toBe(1);
    expect(compareKeys(later, earlier)).toBeGreaterThan(0);
    expect(compareKeys(earlier, later)).toBeLessThan(0);
  });

  test("equal strings compare 0", () => {
    expect(compareKeys("", "")).toBe(0);
    expect(compareKeys("k\u{1F600}", "k\u{1F600}")).toBe(0);
  });
});

describe("index keys", () => {
  test("fromIndexKey undoes toIndexKey for every string, lone surrogates included", () => {
    fc.assert(
      fc.property(
        fc.oneof(key, fc.string({ unit: fc.integer({ min: 0xd000, max: 0xffff }).map((u) => String.fromCharCode(u)) })),
        (k) => {
          expect(fromIndexKey(toIndexKey(k))).toBe(k);
        },
      ),
      { numRuns: 2000 },
    );
  });

  test("a key with no unit at or above U+D800 is its own index key", () => {
    expect(toIndexKey("bench/0000000042")).toBe("bench/0000000042");
    expect(toIndexKey("\uE000")).not.toBe("\uE000");
  });
});

describe("prefixEnd", () => {
  test("[prefix, prefixEnd(prefix)) holds exactly the keys that start with the prefix, surrogates included", () => {
    const near = fc.string({
      unit: fc.constantFrom("a", "\uD7FF", "\uD800", "\uDBFF", "\uDC00", "\uE000", "\uFFFF", "😀"),
      maxLength: 3,
    });
    fc.assert(
      fc.property(fc.oneof(key, near), fc.oneof(key, near), (prefix, candidate) => {
        fc.pre(prefix.length > 0);
        const end = prefixEnd(prefix);
        const inRange = compareKeys(prefix, candidate) <= 0 && (end === undefined || compareKeys(candidate, end) < 0);
        expect(inRange).toBe(candidate.startsWith(prefix));
      }),
      { numRuns: 3000 },
    );
  });
});

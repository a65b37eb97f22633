import { describe, expect, test } from "bun:test";
import { AssertionError } from "../../src/errors.ts";
import { append, compact, mayHoldGarbage, readAt, type VersionChain } from "../../src/storage/mvcc/version-chain.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (value: Uint8Array | undefined) => (value === undefined ? undefined : new TextDecoder().decode(value));
/** The chain in the doc comment's notation: "3:a", "7:∅". */
const show = (chain: VersionChain) => chain.map((v) => `${v.revision}:${v.value === null ? "∅" : text(v.value)}`);

describe("the worked example of version-chain.ts", () => {
  test("put a@3, put b@5, del@7, reads, compact at 5, compact at 7", () => {
    const chain: VersionChain = [];

    append(chain, 3, bytes("a"));
    expect(show(chain)).toEqual(["3:a"]);
    append(chain, 5, bytes("b"));
    expect(show(chain)).toEqual(["3:a", "5:b"]);
    append(chain, 7, null);
    expect(show(chain)).toEqual(["3:a", "5:b", "7:∅"]);

    expect(text(readAt(chain, 4))).toBe("a");
    expect(text(readAt(chain, 6))).toBe("b");
    expect(readAt(chain, 7)).toBeUndefined();
    expect(readAt(chain, 2)).toBeUndefined();

    expect(compact(chain, 5)).toBe(1);
    expect(show(chain)).toEqual(["5:b", "7:∅"]);
    // Everything readable at or after the floor is unchanged.
    expect(text(readAt(chain, 5))).toBe("b");
    expect(text(readAt(chain, 6))).toBe("b");
    expect(readAt(chain, 7)).toBeUndefined();
    expect(mayHoldGarbage(chain)).toBe(true);

    expect(compact(chain, 7)).toBe(2);
    expect(show(chain)).toEqual([]);
    expect(readAt(chain, 7)).toBeUndefined();
    expect(mayHoldGarbage(chain)).toBe(false);
  });
});

describe("compact", () => {
  test("keeps the version visible at the floor when it is a value", () => {
    const chain: VersionChain = [];
    append(chain, 3, bytes("a"));
    append(chain, 5, bytes("b"));
    expect(compact(chain, 2)).toBe(0); // nothing at or below the floor yet
    expect(compact(chain, 9)).toBe(1);
    expect(show(chain)).toEqual(["5:b"]);
    expect(mayHoldGarbage(chain)).toBe(false);
  });
});

describe("append", () => {
  test("rejects a revision that does not increase", () => {
    const chain: VersionChain = [];
    append(chain, 5, bytes("a"));
    expect(() => append(chain, 5, bytes("b"))).toThrow(AssertionError);
    expect(() => append(chain, 4, bytes("b"))).toThrow(AssertionError);
    expect(show(chain)).toEqual(["5:a"]);
  });

  test("rejects two tombstones in a row", () => {
    const chain: VersionChain = [];
    append(chain, 1, bytes("a"));
    append(chain, 2, null);
    expect(() => append(chain, 3, null)).toThrow(AssertionError);
    expect(show(chain)).toEqual(["1:a", "2:∅"]);
    append(chain, 3, bytes("")); // an empty value is not a tombstone
    expect(show(chain)).toEqual(["1:a", "2:∅", "3:"]);
  });
});

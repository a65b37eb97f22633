import { expect, test } from "bun:test";
import fc from "fast-check";
import { KeyTree } from "../../../src/storage/flsm/key-tree.ts";

/** The model: a sorted array of the keys inserted; every walk of the tree must be a slice of it. */
test("the key tree keeps its keys in order and walks any range both ways, at every node size", () => {
  const key = fc.string({ unit: fc.constantFrom("a", "b", "c", "d"), maxLength: 4 });
  fc.assert(
    fc.property(
      fc.array(key, { maxLength: 300 }),
      fc.integer({ min: 2, max: 8 }),
      fc.option(key, { nil: undefined }),
      fc.option(key, { nil: undefined }),
      (keys, nodeMax, low, high) => {
        const tree = new KeyTree<string>(nodeMax);
        for (const k of keys) expect(tree.upsert(k, () => k)).toBe(k);
        const sorted = [...new Set(keys)].sort();
        expect(tree.size).toBe(sorted.length);
        for (const k of sorted) expect(tree.get(k)).toBe(k);
        expect(tree.get("e")).toBeUndefined();
        const inRange = sorted.filter((k) => (low === undefined || k >= low) && (high === undefined || k < high));
        expect([...tree.range(low, high)]).toEqual(inRange);
        expect([...tree.range(low, high, true)]).toEqual(inRange.reverse());
      },
    ),
    { numRuns: 300 },
  );
});

test("the diagram: five keys in nodes of four split the leaf under a branch, and a walk crosses the link", () => {
  const tree = new KeyTree<string>(4);
  for (const k of ["c", "a", "e", "b", "d"]) tree.upsert(k, () => k.toUpperCase());
  expect([...tree.range()]).toEqual(["A", "B", "C", "D", "E"]);
  expect([...tree.range("b", "e", true)]).toEqual(["D", "C", "B"]);
  // An existing key keeps its value: upsert does not call `create`.
  expect(tree.upsert("c", () => "other")).toBe("C");
});

import { expect, test } from "bun:test";
import type { KeyRange } from "../../../../src/storage/flsm/entry.ts";
import { type LevelChange, LevelSet } from "../../../../src/storage/flsm/levels/level-set.ts";
import { bytes, numbers, table } from "./tables.ts";

/** The example of LevelSet's comment, built as flushes and compactions would. */
function example(): LevelSet {
  const guards: LevelChange = {
    removed: [],
    guardsAdded: [
      { level: 1, key: bytes("g") },
      { level: 2, key: bytes("g") },
      { level: 2, key: bytes("d") },
    ],
    added: [],
  };
  const tables: LevelChange = {
    removed: [],
    guardsAdded: [],
    added: [
      { level: 2, guard: null, table: table(1, "a…c", [1, 5]) },
      { level: 2, guard: bytes("d"), table: table(2, "d…f", [1, 5]) },
      { level: 2, guard: bytes("g"), table: table(3, "g…y", [1, 5]) },
      { level: 1, guard: bytes("g"), table: table(4, "h…p", [6, 20]) },
      { level: 1, guard: null, table: table(5, "a…f", [6, 20]) },
      { level: 1, guard: bytes("g"), table: table(7, "g…k", [21, 30]) },
      { level: 0, guard: null, table: table(8, "c…m", [31, 40]) },
      { level: 0, guard: null, table: table(9, "a…z", [41, 50]) },
    ],
  };
  return LevelSet.empty(3).apply(guards).apply(tables);
}

test("a point read consults level 0 newest first, then only the guard holding the key at each level, newest first", () => {
  const levels = example();
  expect(numbers(levels.tablesForGet(bytes("h")))).toEqual([9, 8, 7, 4, 3]);
  expect(numbers(levels.tablesForGet(bytes("b")))).toEqual([9, 5, 1]);
  expect(numbers(levels.tablesForGet(bytes("zz")))).toEqual([]);
});

test("a scan's levels give every table with keys in its range, guard by guard in key order, newest first within a guard", () => {
  const levels = example();
  const perLevel = (range: KeyRange) => [0, 1, 2].map((level) => levels.guardsInRange(level, range).map(numbers));
  expect(perLevel({ start: bytes("e"), end: bytes("i") })).toEqual([[[9, 8]], [[5], [7, 4]], [[2], [3]]]);
  expect(perLevel({ start: bytes("q"), end: bytes("r") })).toEqual([[[9]], [], [[3]]]);
  expect(perLevel({ end: bytes("b") })).toEqual([[[9]], [[5]], [[1]]]);
});

test("a guard that would split a table is refused; one that does not takes the tables after it", () => {
  const levels = example();
  const splitting = { removed: [], added: [], guardsAdded: [1, 2].map((level) => ({ level, key: bytes("j") })) };
  expect(() => levels.apply(splitting)).toThrow("guard 6a would split table 7");
  const moved = levels.apply({ removed: [], added: [], guardsAdded: [{ level: 2, key: bytes("0") }] });
  expect(moved.guards(2).map((g) => [g.key && new TextDecoder().decode(g.key), numbers(g.tables)])).toEqual([
    [null, []],
    ["0", [1]],
    ["d", [2]],
    ["g", [3]],
  ]);
  expect(numbers(moved.tablesForGet(bytes("a")))).toEqual([9, 5, 1]);
});

test("a guard added to a level must be added to every deeper one", () => {
  const change = { removed: [], added: [], guardsAdded: [{ level: 1, key: bytes("t") }] };
  expect(() => example().apply(change)).toThrow("guard 74 of level 1 missing at 2");
});

test("a table goes to the guard that holds its keys, and may not cross the next guard", () => {
  const levels = example();
  const wrongGuard = {
    removed: [],
    guardsAdded: [],
    added: [{ level: 1, guard: null, table: table(10, "h…i", [51, 52]) }],
  };
  expect(() => levels.apply(wrongGuard)).toThrow("table 10 belongs in guard 67");
  const crossing = {
    removed: [],
    guardsAdded: [],
    added: [{ level: 2, guard: bytes("d"), table: table(10, "e…h", [51, 52]) }],
  };
  expect(() => levels.apply(crossing)).toThrow("table 10 crosses guard 67 of level 2");
  const level0Guard = {
    removed: [],
    guardsAdded: [],
    added: [{ level: 0, guard: bytes("g"), table: table(10, "h…i", [51, 52]) }],
  };
  expect(() => levels.apply(level0Guard)).toThrow("belongs in guard (sentinel)");
});

test("applying a change makes a new set and leaves the old one as its readers saw it", () => {
  const before = example();
  const after = before.apply({
    removed: [
      { level: 1, number: 7 },
      { level: 1, number: 4 },
    ],
    guardsAdded: [],
    added: [{ level: 2, guard: bytes("g"), table: table(10, "g…p", [6, 30]) }],
  });
  expect(numbers(before.tablesForGet(bytes("h")))).toEqual([9, 8, 7, 4, 3]);
  expect(numbers(after.tablesForGet(bytes("h")))).toEqual([9, 8, 10, 3]);
  expect(after.stats()).toEqual([
    { level: 0, tables: 2, bytes: 1700, guards: 0 },
    { level: 1, tables: 1, bytes: 500, guards: 1 },
    { level: 2, tables: 4, bytes: 1600, guards: 2 },
  ]);
  expect(() => after.apply({ removed: [{ level: 1, number: 7 }], guardsAdded: [], added: [] })).toThrow(
    "table 7 is not in level 1",
  );
});

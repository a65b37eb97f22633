import { describe, expect, test } from "bun:test";
import { InvalidEditError, ManifestState } from "../../../../src/storage/flsm/manifest/manifest-state.ts";
import type { VersionEdit } from "../../../../src/storage/flsm/manifest/version-edit.ts";
import { bytes } from "../../../helpers/bytes.ts";
import { table } from "./fixtures.ts";

const next = (number: number) => ({ kind: "next-file-number", number }) as const;
const guard = (level: number, key: string) => ({ kind: "add-guard", level, key: bytes(key) }) as const;

describe("ManifestState", () => {
  test("the worked example on the type: a guard, a table in it, then the table compacted a level down", () => {
    const state = new ManifestState();
    state.apply([guard(2, "m")]);
    expect(state.guards(2)).toEqual([{ tables: [] }, { key: bytes("m"), tables: [] }]);
    state.apply([{ kind: "add-table", table: table(7, 2, "m", "q", "m") }, next(8)]);
    expect(state.guards(2)[1]!.tables.map((t) => t.number)).toEqual([7]);
    state.apply([
      { kind: "remove-table", number: 7, level: 2 },
      { kind: "add-table", table: table(8, 3, "m", "q") },
      next(9),
    ]);
    expect(state.liveFiles()).toEqual([8]);
    expect(state.guards(2)).toEqual([{ tables: [] }, { key: bytes("m"), tables: [] }]);
    expect(state.guards(3)).toEqual([{ tables: [table(8, 3, "m", "q")] }]);
    expect(state.nextFileNumber).toBe(9);
  });

  test("tables are grouped by level and guard: the sentinel first, guards in key order, tables by number", () => {
    const state = new ManifestState();
    state.apply([
      guard(1, "p"),
      guard(1, "d"),
      { kind: "add-table", table: table(5, 1, "q", "z", "p") },
      { kind: "add-table", table: table(2, 1, "p", "pz", "p") },
      { kind: "add-table", table: table(3, 1, "a", "c") },
      { kind: "add-table", table: table(4, 0, "a", "z") },
      { kind: "add-table", table: table(1, 0, "b", "y") },
      next(6),
      { kind: "flushed-revision", revision: 40 },
      { kind: "compacted-revision", revision: 9 },
    ]);
    const numbers = state
      .levels()
      .map((guards) => guards.map((g) => [g.key && Buffer.from(g.key).toString(), g.tables.map((t) => t.number)]));
    expect(numbers).toEqual([
      [[undefined, [1, 4]]],
      [
        [undefined, [3]],
        ["d", []],
        ["p", [2, 5]],
      ],
    ]);
    expect(state.liveFiles()).toEqual([1, 2, 3, 4, 5]);
    expect(state.flushedRevision).toBe(40);
    expect(state.compactedRevision).toBe(9);
  });

  test("a guard added before a table's keys takes the table, as the level set moves it (a compaction adds guards to deeper levels)", () => {
    const state = new ManifestState();
    state.apply([
      { kind: "add-table", table: table(1, 2, "m", "q") },
      { kind: "add-table", table: table(2, 2, "a", "b") },
      next(3),
    ]);
    state.apply([guard(1, "c"), guard(2, "c")]);
    const numbers = (level: number) =>
      state.guards(level).map((g) => [g.key && Buffer.from(g.key).toString(), g.tables.map((t) => t.number)]);
    expect(numbers(2)).toEqual([
      [undefined, [2]],
      ["c", [1]],
    ]);
    const replayed = new ManifestState();
    replayed.apply(state.snapshot());
    expect(replayed.levels()).toEqual(state.levels());
  });

  test("a snapshot applied to an empty state gives the same state", () => {
    const state = new ManifestState();
    state.apply([guard(2, "k"), { kind: "add-table", table: table(1, 2, "k", "n", "k") }, next(3)]);
    state.apply([guard(2, "c"), { kind: "add-table", table: table(2, 0, "a", "b") }]);
    state.apply([
      { kind: "flushed-revision", revision: 5 },
      { kind: "compacted-revision", revision: 2 },
      { kind: "live-totals", keys: 7, valueBytes: 40 },
    ]);
    // The totals are a state, not a counter: they go down as well as up.
    state.apply([{ kind: "live-totals", keys: 3, valueBytes: 12 }]);
    const copy = new ManifestState();
    copy.apply(state.snapshot());
    expect(copy.snapshot()).toEqual(state.snapshot());
    expect(copy.levels()).toEqual(state.levels());
    expect(copy.liveTotals).toEqual({ keys: 3, valueBytes: 12 });
    expect(new ManifestState().snapshot()).toEqual([
      next(1),
      { kind: "flushed-revision", revision: 0 },
      { kind: "compacted-revision", revision: 0 },
    ]);
  });

  test("a table may move to another level under its number within one edit", () => {
    const state = new ManifestState();
    state.apply([{ kind: "add-table", table: table(1, 0, "a", "b") }, next(2)]);
    state.apply([
      { kind: "remove-table", number: 1, level: 0 },
      { kind: "add-table", table: table(1, 1, "a", "b") },
    ]);
    expect(state.table(1)!.level).toBe(1);
  });

  /** A state every refusal below starts from: guard "m" at level 1, table 1 at level 0, table 2 in "m". */
  function base(): ManifestState {
    const state = new ManifestState();
    state.apply([
      guard(1, "m"),
      { kind: "add-table", table: table(1, 0, "a", "z") },
      { kind: "add-table", table: table(2, 1, "m", "p", "m") },
      next(10),
      { kind: "flushed-revision", revision: 50 },
      { kind: "compacted-revision", revision: 20 },
    ]);
    return state;
  }

  const refused: [string, VersionEdit, RegExp][] = [
    [
      "removing a table the state does not hold",
      [{ kind: "remove-table", number: 3, level: 0 }],
      /table 3 is removed but not in the state/,
    ],
    [
      "removing a table from the wrong level",
      [{ kind: "remove-table", number: 2, level: 0 }],
      /removed from level 0 but is at level 1/,
    ],
    [
      "adding a number already live",
      [{ kind: "add-table", table: table(1, 0, "a", "b") }],
      /table 1 is added but already in the state/,
    ],
    [
      "a guard not added before the table",
      [{ kind: "add-table", table: table(3, 1, "q", "r", "q") }],
      /guard 71 \(hex\), not added at level 1/,
    ],
    ["a guard at level 0", [guard(0, "k")], /level 0 has no guards/],
    [
      "a level-0 table naming a guard",
      [{ kind: "add-table", table: table(3, 0, "m", "n", "m") }],
      /at level 0 names a guard/,
    ],
    ["a guard added twice", [guard(1, "m")], /guard 6d \(hex\) is added twice at level 1/],
    ["an empty guard key", [guard(1, "")], /an empty guard key/],
    ["a level past the format's bound", [guard(16, "k")], /level 16 is not 0..15/],
    [
      "a table starting below its guard",
      [{ kind: "add-table", table: table(3, 1, "a", "n", "m") }],
      /table 3 starts below its guard/,
    ],
    [
      "a table whose smallest key is above its largest",
      [{ kind: "add-table", table: table(3, 0, "z", "a") }],
      /smallest key is above its largest/,
    ],
    [
      "a table number at or above the next file number",
      [{ kind: "add-table", table: table(10, 0, "a", "b") }],
      /table 10 is not below the next file number 10/,
    ],
    ["a table number of 0", [{ kind: "add-table", table: table(0, 0, "a", "b") }], /table number 0/],
    ["the next file number going back", [next(9)], /next file number goes back from 10 to 9/],
    ["the flushed revision going back", [{ kind: "flushed-revision", revision: 49 }], /flushed revision goes back/],
    [
      "the compacted revision going back",
      [{ kind: "compacted-revision", revision: 19 }],
      /compacted revision goes back/,
    ],
  ];
  for (const [what, edit, message] of refused) {
    test(`refuses ${what}, and an edit refused part way changes nothing`, () => {
      const state = base();
      const before = state.snapshot();
      // Valid items ahead of the bad one, of every kind, so that undoing them is tested too.
      const ahead: VersionEdit = [
        guard(2, "x"),
        { kind: "add-table", table: table(9, 2, "x", "y", "x") },
        { kind: "remove-table", number: 2, level: 1 },
        { kind: "flushed-revision", revision: 60 },
      ];
      expect(() => state.apply([...ahead, ...edit])).toThrow(InvalidEditError);
      expect(() => state.apply(edit)).toThrow(message);
      expect(state.snapshot()).toEqual(before);
      expect(state.guards(2)).toEqual([{ tables: [] }]);
    });
  }
});

import { expect, test } from "bun:test";
import fc from "fast-check";
import { compareEntries, type Entry } from "../../../src/storage/flsm/entry.ts";
import { mergeRuns } from "../../../src/storage/flsm/merge.ts";

const entry = fc
  .record({ key: fc.uint8Array({ maxLength: 3 }), revision: fc.integer({ min: 1, max: 30 }) })
  .map(({ key, revision }): Entry => ({ key, revision, value: null, createRevision: 0, version: 0 }));

/** A run: sorted, one entry per (key, revision), tagged with the run it came from. */
const runs = fc.array(fc.array(entry, { maxLength: 20 }), { maxLength: 6 }).map((lists) =>
  lists.map((list, run) => {
    const sorted = [...list].sort(compareEntries).map((e) => ({ ...e, value: new Uint8Array([run]) }));
    return sorted.filter((e, i) => i === 0 || compareEntries(sorted[i - 1] as Entry, e) !== 0);
  }),
);

/** The model: every entry once, the one of the lowest-numbered (newest) run, in internal-key order. */
function model(lists: Entry[][]): Entry[] {
  const kept: Entry[] = [];
  for (const list of lists) for (const e of list) if (!kept.some((k) => compareEntries(k, e) === 0)) kept.push(e);
  return kept.sort(compareEntries);
}

test("merging sorted runs gives the union in internal-key order, the newest run's entry on a tie", () => {
  fc.assert(
    fc.property(runs, (lists) => {
      const merged = [...mergeRuns(lists.map((list) => list[Symbol.iterator]()))];
      expect(merged).toEqual(model(lists));
    }),
    { numRuns: 500 },
  );
});

test("a reverse merge of reversed runs is the exact reverse", () => {
  fc.assert(
    fc.property(runs, (lists) => {
      const merged = [
        ...mergeRuns(
          lists.map((list) => [...list].reverse()[Symbol.iterator]()),
          true,
        ),
      ];
      expect(merged).toEqual(model(lists).reverse());
    }),
    { numRuns: 500 },
  );
});

import { expect, test } from "bun:test";
import fc from "fast-check";
import { ChangeMerge } from "../../../src/cluster/txn/change-merge.ts";

interface Change {
  revision: number;
  key: string;
}

test("changes come out in revision order, only up to the lowest resolved timestamp", () => {
  const merge = new ChangeMerge<Change>([1, 2], 0);
  merge.push(1, [
    { revision: 5, key: "a" },
    { revision: 9, key: "b" },
  ]);
  merge.push(2, [{ revision: 7, key: "c" }]);
  expect(merge.take()).toEqual([]); // nothing resolved yet: partition 2 may still have a 3
  merge.resolve(1, 10);
  merge.resolve(2, 8);
  expect(merge.watermark).toBe(8);
  expect(merge.take().map((c) => c.key)).toEqual(["a", "c"]);
  merge.resolve(2, 20);
  expect(merge.take().map((c) => c.key)).toEqual(["b"]);
  // An announcement below an earlier one (a new leader that knows less) changes nothing.
  merge.resolve(1, 4);
  expect(merge.watermark).toBe(10);
  // A partition pushing below what it resolved is a bug upstream, told at once.
  expect(() => merge.push(1, [{ revision: 10, key: "d" }])).toThrow(
    "partition 1 pushed a change at 10, at or below 10",
  );
});

/**
 * Partitions in the abstract: each applies changes at revisions of its own, not necessarily in
 * order (a transaction's secondary committed late lands below newer ones), but never at or below a
 * resolved timestamp it announced; announcements come at random. The merged feed must hand out
 * every change once, in nondecreasing revision order, each only once nothing before it can come.
 */
test("property: every change handed out once, in revision order, never before a change that belongs before it", () => {
  fc.assert(
    fc.property(
      fc.integer({ min: 1, max: 4 }),
      fc.array(fc.tuple(fc.nat(3), fc.integer({ min: 1, max: 30 }), fc.boolean()), { minLength: 1, maxLength: 200 }),
      (count, steps) => {
        const partitions = Array.from({ length: count }, (_, i) => i);
        const merge = new ChangeMerge<Change>(partitions, 0);
        const floor = new Map(partitions.map((p) => [p, 0]));
        const all: Change[] = [];
        const out: Change[] = [];
        let serial = 0;
        for (const [which, step, announce] of steps) {
          const p = which % count;
          if (announce) {
            floor.set(p, floor.get(p)! + step);
            merge.resolve(p, floor.get(p)!);
          } else {
            const change = { revision: Math.max(merge.watermark, floor.get(p)!) + step, key: `c${serial++}` };
            merge.push(p, [change]);
            all.push(change);
          }
          out.push(...merge.take());
        }
        for (const p of partitions) merge.resolve(p, Number.MAX_SAFE_INTEGER);
        out.push(...merge.take());
        expect(out.map((c) => c.key).sort()).toEqual(all.map((c) => c.key).sort());
        for (let i = 1; i < out.length; i++) expect(out[i]!.revision).toBeGreaterThanOrEqual(out[i - 1]!.revision);
      },
    ),
    { numRuns: 500 },
  );
});

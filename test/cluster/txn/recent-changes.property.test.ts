import { expect, test } from "bun:test";
import fc from "fast-check";
import { RecentChanges } from "../../../src/cluster/txn/recent-changes.ts";

/**
 * RecentChanges against a model that keeps every write: whenever it answers whether a key of a
 * range was written after a revision, the answer is the model's; it may not know (the changes after
 * that revision are no longer all kept), but it always knows about the revisions since the newest
 * write it forgot. Writes come as a partition's store makes them: the store's revision only grows,
 * and a late commit lands below it.
 */
type Op =
  | { kind: "write"; keys: string[]; late: number; advance: number }
  | { kind: "reset"; advance: number }
  | { kind: "ask"; back: number; low: string; high: string };

const key = fc.constantFrom("a", "b", "c", "d", "e", "f");
const op: fc.Arbitrary<Op> = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.record({
      kind: fc.constant("write" as const),
      keys: fc.array(key, { minLength: 1, maxLength: 3 }),
      late: fc.nat({ max: 5 }),
      advance: fc.nat({ max: 3 }),
    }),
  },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant("reset" as const), advance: fc.nat({ max: 3 }) }) },
  {
    weight: 4,
    arbitrary: fc.record({ kind: fc.constant("ask" as const), back: fc.nat({ max: 20 }), low: key, high: key }),
  },
);

test("property: whenever it answers, a key of the range was written after the revision exactly when the model says so", () => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 8 }), fc.array(op, { maxLength: 80 }), (capacity, ops) => {
      const recent = new RecentChanges(capacity, 0);
      let revision = 0;
      let since = 0;
      let writes: { key: string; revision: number }[] = [];
      for (const o of ops) {
        if (o.kind === "write") {
          // A late commit (late > 0) lands below the store's revision; otherwise it moves it on.
          const at = o.late > 0 ? Math.max(since + 1, revision - o.late) : revision + 1 + o.advance;
          if (at <= since) continue;
          revision = Math.max(revision, at);
          recent.record(o.keys, at, revision);
          for (const k of o.keys) writes.push({ key: k, revision: at });
        } else if (o.kind === "reset") {
          revision += o.advance;
          since = revision;
          writes = [];
          recent.reset(revision);
        } else {
          const after = Math.max(since, revision - o.back);
          const inRange = (k: string) => k >= o.low && k <= o.high;
          const model = writes.some((w) => w.revision > after && inRange(w.key));
          const answer = recent.changedAfter(after, inRange);
          if (answer !== undefined) expect(answer).toBe(model);
          // The newest revision is always known: nothing was written after it.
          expect(recent.changedAfter(revision, inRange)).toBe(false);
        }
      }
    }),
  );
});

test("a late commit below the store's revision is found by a poll from before it, though entries after it were applied first", () => {
  const recent = new RecentChanges(4, 0);
  recent.record(["a"], 10, 10);
  recent.record(["b"], 11, 11);
  recent.record(["c"], 7, 11); // a secondary committed late
  // A poll from 6 finds it, behind two entries applied before it at higher revisions; from 8, not.
  expect(recent.changedAfter(6, (k) => k === "c")).toBe(true);
  expect(recent.changedAfter(8, (k) => k === "c")).toBe(false);
  expect(recent.changedAfter(11, () => true)).toBe(false);
  // Full: the oldest (a@10, applied at 10) goes; a poll from before 10 cannot be answered.
  recent.record(["d"], 12, 12);
  recent.record(["e"], 13, 13);
  expect(recent.changedAfter(9, () => true)).toBeUndefined();
  expect(recent.changedAfter(10, (k) => k === "c")).toBe(false);
  expect(recent.changedAfter(10, (k) => k === "e")).toBe(true);
});

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { type ExpiryEntry, ExpiryQueue } from "../../src/storage/ttl/expiry-queue.ts";

const names = (entries: readonly ExpiryEntry[]) => entries.map(({ key, revision }) => `${key}@${revision}`);

/** Pops everything due at `nowMs`, `max` heap entries per call, as a caller loops. */
function drainDue(queue: ExpiryQueue, nowMs: number, max: number): { entries: ExpiryEntry[]; calls: number } {
  const entries: ExpiryEntry[] = [];
  let calls = 0;
  for (let next = queue.nextDeadline(); next !== undefined && next <= nowMs; next = queue.nextDeadline()) {
    const batch = queue.popDue(nowMs, max);
    expect(batch.length).toBeLessThanOrEqual(max);
    entries.push(...batch);
    calls++;
    if (calls > 100_000) throw new Error("popDue makes no progress");
  }
  return { entries, calls };
}

describe("ExpiryQueue", () => {
  test("the worked example of the type comment", () => {
    const queue = new ExpiryQueue();
    queue.add(2000, "a", 5);
    queue.add(1000, "b", 6);
    queue.add(3000, "a", 7);
    expect(queue.size).toBe(2);
    expect(queue.heapSize).toBe(3);
    expect(queue.nextDeadline()).toBe(1000);
    expect(names(queue.popDue(2500, 10))).toEqual(["b@6"]);
    expect(queue.heapSize).toBe(1); // a@5 was popped and skipped
    expect(names(queue.popDue(2999, 10))).toEqual([]);
    expect(names(queue.popDue(3000, 10))).toEqual(["a@7"]);
    expect(queue.size).toBe(0);
    expect(queue.nextDeadline()).toBeUndefined();
  });

  test("nothing is due before its deadline; a deadline equal to now is due", () => {
    const queue = new ExpiryQueue();
    queue.add(100, "k", 1);
    expect(queue.popDue(99, 10)).toEqual([]);
    expect(queue.popDue(100, 10)).toEqual([{ expiresAtMs: 100, key: "k", revision: 1 }]);
  });

  test("popDue pops at most max entries, earliest first, ties by revision then key", () => {
    const queue = new ExpiryQueue();
    queue.add(50, "z", 3);
    queue.add(50, "b", 2);
    queue.add(50, "a", 2);
    queue.add(10, "late-rev", 9);
    queue.add(60, "c", 1);
    expect(names(queue.popDue(100, 2))).toEqual(["late-rev@9", "a@2"]);
    expect(names(queue.popDue(100, 2))).toEqual(["b@2", "z@3"]);
    expect(names(queue.popDue(100, 2))).toEqual(["c@1"]);
  });

  test("an older revision of a queued key is refused; a newer one replaces it", () => {
    const queue = new ExpiryQueue();
    expect(queue.add(500, "k", 4)).toBe(true);
    expect(queue.add(100, "k", 3)).toBe(false);
    expect(queue.add(100, "k", 4)).toBe(false);
    expect(queue.add(900, "k", 5)).toBe(true);
    expect(queue.size).toBe(1);
    expect(names(queue.popDue(600, 10))).toEqual([]); // k@4 is stale
    expect(names(queue.popDue(900, 10))).toEqual(["k@5"]);
    // Once popped, the key may be queued again at any revision (a failed expiry is requeued).
    expect(queue.add(900, "k", 5)).toBe(true);
  });

  test("stale entries count toward max (bounded work), the rest come on the next call", () => {
    const queue = new ExpiryQueue();
    for (let revision = 1; revision <= 5; revision++) queue.add(revision, "k", revision);
    queue.add(10, "other", 6);
    expect(queue.popDue(100, 3)).toEqual([]); // k@1..3: stale
    expect(queue.nextDeadline()).toBe(4);
    expect(names(queue.popDue(100, 3))).toEqual(["k@5", "other@6"]);
  });

  test("a key rewritten many times keeps the heap within 2 × live + slack", () => {
    const queue = new ExpiryQueue();
    for (let revision = 1; revision <= 50_000; revision++)
      queue.add(1_000_000 - revision, `session/${revision % 10}`, revision);
    expect(queue.size).toBe(10);
    expect(queue.heapSize).toBeLessThanOrEqual(2 * 10 + 1_024 + 1);
    const { entries } = drainDue(queue, Infinity, 1_000);
    expect(names(entries)).toEqual(
      Array.from({ length: 10 }, (_, i) => `session/${(49_991 + i) % 10}@${49_991 + i}`).reverse(),
    );
  });

  test("property: popDue returns exactly the due live entries, in deadline order", () => {
    const add = fc.record({
      key: fc.constantFrom("a", "b", "c", "d", "e", "f", "g", "h"),
      deadline: fc.integer({ min: 0, max: 1_000 }),
    });
    fc.assert(
      fc.property(
        fc.array(add, { maxLength: 300 }),
        fc.integer({ min: 0, max: 1_100 }),
        fc.integer({ min: 1, max: 20 }),
        (adds, nowMs, max) => {
          const queue = new ExpiryQueue();
          const model = new Map<string, ExpiryEntry>();
          adds.forEach(({ key, deadline }, i) => {
            const entry = { expiresAtMs: deadline, key, revision: i + 1 };
            queue.add(entry.expiresAtMs, entry.key, entry.revision);
            model.set(key, entry);
          });
          const due = [...model.values()].filter((entry) => entry.expiresAtMs <= nowMs);
          due.sort((a, b) => a.expiresAtMs - b.expiresAtMs || a.revision - b.revision);
          const { entries } = drainDue(queue, nowMs, max);
          expect(entries).toEqual(due);
          // What is left is exactly what is not due, and it all comes out later.
          expect(queue.size).toBe(model.size - due.length);
          const rest = drainDue(queue, Infinity, max).entries;
          expect(rest.map((e) => e.key).sort()).toEqual(
            [...model.values()]
              .filter((e) => e.expiresAtMs > nowMs)
              .map((e) => e.key)
              .sort(),
          );
          for (let i = 1; i < rest.length; i++)
            expect(rest[i]!.expiresAtMs).toBeGreaterThanOrEqual(rest[i - 1]!.expiresAtMs);
        },
      ),
      { numRuns: 300 },
    );
  });
});

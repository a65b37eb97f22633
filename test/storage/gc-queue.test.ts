import { expect, test } from "bun:test";
import fc from "fast-check";
import { GcQueue } from "../../src/storage/mvcc/gc-queue.ts";

test("property: pops come in push order, each with its key, revision and slot, only while the head's revision is at or below the floor", () => {
  const step = fc.oneof(
    fc.record({ push: fc.nat(1_000), slot: fc.nat(1_000_000) }),
    fc.record({ popAt: fc.integer({ min: 0, max: 300 }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 5 }), fc.array(step, { maxLength: 300 }), (chunkEntries, steps) => {
      const queue = new GcQueue(chunkEntries);
      const model: { key: number; revision: number; slot: number }[] = [];
      let revision = 0;
      for (const s of steps) {
        if ("push" in s) {
          revision++; // writes come in revision order
          queue.push(s.push, revision, s.slot);
          model.push({ key: s.push, revision, slot: s.slot });
        } else {
          const ready = model.length > 0 && model[0]!.revision <= s.popAt;
          expect(queue.hasReady(s.popAt)).toBe(ready);
          expect(queue.popReady(s.popAt)).toBe(ready);
          if (ready) expect({ ...queue.popped }).toEqual(model.shift()!);
        }
        expect(queue.size).toBe(model.length);
      }
    }),
    { numRuns: 300 },
  );
});

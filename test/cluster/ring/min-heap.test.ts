import { expect, test } from "bun:test";
import fc from "fast-check";
import { MinHeap } from "../../../src/cluster/ring/min-heap.ts";

test("a MinHeap gives back what it was given, smallest first, pushes and pops interleaved (fast-check)", () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(fc.nat({ max: 50 }), fc.constant("pop" as const)), { maxLength: 200 }), (script) => {
      const heap = new MinHeap();
      const model: number[] = [];
      for (const action of script) {
        if (action === "pop") {
          heap.pop();
          model.sort((a, b) => a - b).shift();
        } else {
          heap.push(action);
          model.push(action);
        }
        expect(heap.size).toBe(model.length);
        expect(heap.peek()).toBe(model.length === 0 ? undefined : Math.min(...model));
      }
    }),
    { numRuns: 300 },
  );
});

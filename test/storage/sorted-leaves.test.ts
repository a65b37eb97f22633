import { expect, test } from "bun:test";
import fc from "fast-check";
import { SortedLeaves } from "../../src/storage/mvcc/packed/sorted-leaves.ts";

/** Leaves over keys held in a plain array (id → key), counting the work each step does. */
function leavesOver(leafMax: number) {
  const keys: string[] = [];
  const work = { compares: 0, keyReads: 0 };
  const leaves = new SortedLeaves(
    (id, key, shared) => {
      work.compares++;
      // The leaves say both begin with `shared` units alike: true, and only what follows is compared.
      const own = keys[id]!;
      if (own.slice(0, shared) !== key.slice(0, shared))
        throw new Error(`${JSON.stringify(own)} and ${JSON.stringify(key)} do not share ${shared} units`);
      const [ownRest, keyRest] = [own.slice(shared), key.slice(shared)];
      return ownRest < keyRest ? -1 : ownRest > keyRest ? 1 : 0;
    },
    (id) => {
      work.keyReads++;
      return keys[id]!;
    },
    leafMax,
  );
  return { leaves, keys, work };
}

test("property: inserts and removals in any order keep forward and backward walks in key order", () => {
  const key = fc.string({ unit: fc.constantFrom("a", "b", "c", "\u00ff", "\u20ac"), maxLength: 4 });
  const step = fc.oneof(
    fc.record({ insert: key }),
    fc.record({ remove: fc.nat() }),
    fc.record({ walkFrom: fc.option(key, { nil: undefined }) }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 9 }), fc.array(step, { maxLength: 300 }), (leafMax, steps) => {
      const { leaves, keys } = leavesOver(leafMax);
      const live = new Map<string, number>();
      for (const s of steps) {
        if ("insert" in s) {
          if (live.has(s.insert)) continue;
          keys.push(s.insert);
          live.set(s.insert, keys.length - 1);
          leaves.insert(keys.length - 1, s.insert);
        } else if ("remove" in s) {
          const all = [...live.keys()];
          if (all.length === 0) continue;
          const victim = all[s.remove % all.length]!;
          leaves.remove(live.get(victim)!, victim);
          live.delete(victim);
        } else {
          const sorted = [...live.keys()].sort();
          const from = s.walkFrom;
          expect([...leaves.forward(from)].map((id) => keys[id])).toEqual(
            sorted.filter((k) => from === undefined || k >= from),
          );
          expect([...leaves.backward(from)].map((id) => keys[id])).toEqual(
            sorted.filter((k) => from === undefined || k < from).reverse(),
          );
        }
      }
      expect([...leaves.forward()].map((id) => keys[id])).toEqual([...live.keys()].sort());
    }),
    { numRuns: 300 },
  );
});

test("property: keys appended in order (a restore), then inserted and removed in any order, walk in key order; last is the greatest", () => {
  const key = fc.string({ unit: fc.constantFrom("a", "b", "c", "\u00ff"), maxLength: 4 });
  fc.assert(
    fc.property(
      fc.integer({ min: 2, max: 9 }),
      fc.uniqueArray(key, { maxLength: 60 }),
      fc.array(fc.oneof(fc.record({ insert: key }), fc.record({ remove: fc.nat() })), { maxLength: 100 }),
      (leafMax, restored, steps) => {
        const { leaves, keys, work } = leavesOver(leafMax);
        const live = new Map<string, number>();
        const add = (k: string) => {
          keys.push(k);
          live.set(k, keys.length - 1);
          return keys.length - 1;
        };
        const greatest = () => {
          const sorted = [...live.keys()].sort();
          return sorted.length === 0 ? -1 : live.get(sorted.at(-1)!)!;
        };
        expect(leaves.last()).toBe(-1);
        for (const k of restored.sort()) {
          leaves.append(add(k));
          expect(leaves.last()).toBe(greatest());
        }
        expect(work.compares).toBe(0); // an append searches nothing
        for (const s of steps) {
          if ("insert" in s) {
            if (!live.has(s.insert)) leaves.insert(add(s.insert), s.insert);
          } else if (live.size > 0) {
            const victim = [...live.keys()][s.remove % live.size]!;
            leaves.remove(live.get(victim)!, victim);
            live.delete(victim);
          }
          expect(leaves.last()).toBe(greatest());
        }
        const sorted = [...live.keys()].sort();
        expect([...leaves.forward()].map((id) => keys[id])).toEqual(sorted);
        expect([...leaves.backward()].map((id) => keys[id])).toEqual(sorted.reverse());
      },
    ),
    { numRuns: 300 },
  );
});

test("an insert or a removal does bounded work at any size: a search within one leaf, never a rebuild", () => {
  const { leaves, keys, work } = leavesOver(512);
  let most = { compares: 0, keyReads: 0 };
  const measure = (step: () => void) => {
    work.compares = 0;
    work.keyReads = 0;
    step();
    most = { compares: Math.max(most.compares, work.compares), keyReads: Math.max(most.keyReads, work.keyReads) };
  };
  for (let i = 0; i < 200_000; i++) {
    const key = String((i * 2654435761) % 4294967291).padStart(10, "0");
    keys.push(key);
    measure(() => leaves.insert(i, key));
  }
  for (let i = 0; i < 200_000; i += 3) measure(() => leaves.remove(i, keys[i]!));
  // log2(512) + 1 compares within a leaf (twice for a removal's lookup), one key read per split.
  expect(most.compares).toBeLessThanOrEqual(10);
  expect(most.keyReads).toBeLessThanOrEqual(1);
  expect(leaves.allocatedBytes).toBeLessThan(4 * 200_000 * 4); // leaves at least a quarter full on average
});

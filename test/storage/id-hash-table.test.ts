import { expect, test } from "bun:test";
import fc from "fast-check";
import { IdHashTable } from "../../src/storage/mvcc/packed/id-hash-table.ts";

/** Keys are strings, ids their positions in `keys`; hashes come from the test, so they collide at will. */
test("property: adds and deletes across incremental growth find exactly the live entries", () => {
  const step = fc.oneof(
    { weight: 3, arbitrary: fc.record({ add: fc.string({ maxLength: 3 }), hash: fc.integer({ min: -8, max: 8 }) }) },
    { weight: 2, arbitrary: fc.record({ delete: fc.nat() }) },
    { weight: 2, arbitrary: fc.record({ find: fc.string({ maxLength: 3 }) }) },
  );
  fc.assert(
    // Two slots to start with and one old slot carried over per add: growth is nearly always under way.
    fc.property(fc.integer({ min: 1, max: 3 }), fc.array(step, { maxLength: 300 }), (movesPerAdd, steps) => {
      const keys: string[] = [];
      const table = new IdHashTable((id, key) => keys[id] === key, 2, movesPerAdd);
      const live = new Map<string, { id: number; hash: number }>();
      const hashOf = new Map<string, number>(); // a key keeps the hash it was first given
      for (const s of steps) {
        if ("add" in s) {
          if (live.has(s.add)) continue;
          const hash = hashOf.get(s.add) ?? s.hash;
          hashOf.set(s.add, hash);
          keys.push(s.add);
          table.add(keys.length - 1, hash);
          live.set(s.add, { id: keys.length - 1, hash });
        } else if ("delete" in s) {
          const all = [...live.keys()];
          if (all.length === 0) continue;
          const victim = all[s.delete % all.length]!;
          const { id, hash } = live.get(victim)!;
          table.delete(id, hash);
          live.delete(victim);
        } else {
          const hash = hashOf.get(s.find);
          if (hash !== undefined) expect(table.find(hash, s.find)).toBe(live.get(s.find)?.id ?? -1);
        }
        expect(table.size).toBe(live.size);
      }
      for (const [key, { id, hash }] of live) expect(table.find(hash, key)).toBe(id);
    }),
    { numRuns: 500 },
  );
});

test("growth is spread over the adds: the old table stays until movesPerAdd slots a time have carried it over", () => {
  const keys: string[] = [];
  const table = new IdHashTable((id, key) => keys[id] === key, 1_024, 16);
  const add = () => {
    keys.push(`k${keys.length}`);
    table.add(keys.length - 1, Math.imul(keys.length, 0x9e3779b1) | 0);
  };
  while (table.allocatedBytes === 1_024 * 8) add();
  // Both tables now: 1,024 slots to carry over, 16 with each add (a stop-the-world rehash would
  // have dropped the old one at once).
  expect(table.allocatedBytes).toBe(1_024 * 8 + 2_048 * 8);
  for (let i = 0; i < 1_024 / 16 - 1; i++) add();
  expect(table.allocatedBytes).toBe(1_024 * 8 + 2_048 * 8);
  add();
  expect(table.allocatedBytes).toBe(2_048 * 8);
  for (const [id, key] of keys.entries()) expect(table.find(Math.imul(id + 1, 0x9e3779b1) | 0, key)).toBe(id);
});

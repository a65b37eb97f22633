import { expect, test } from "bun:test";
import fc from "fast-check";
import {
  assertGuardTuning,
  DEFAULT_GUARD_TUNING,
  firstGuardLevel,
  type GuardTuning,
  guardBits,
  isGuard,
} from "../../../../src/storage/flsm/levels/guards.ts";

const tuning = fc.record({
  levelCount: fc.integer({ min: 2, max: 8 }),
  firstLevelBits: fc.integer({ min: 1, max: 12 }),
  bitsStep: fc.integer({ min: 0, max: 3 }),
});

test("a guard of a level is a guard of every deeper level, and level 0 has none", () => {
  fc.assert(
    fc.property(tuning, fc.array(fc.uint8Array({ maxLength: 12 }), { maxLength: 50 }), (t, keys) => {
      assertGuardTuning(t);
      for (const key of keys) {
        expect(isGuard(key, 0, t)).toBe(false);
        const first = firstGuardLevel(key, t);
        for (let level = 1; level < t.levelCount; level++) expect(isGuard(key, level, t)).toBe(level >= first);
      }
    }),
    { numRuns: 300 },
  );
});

test("each level's guard density is 2^-guardBits on random keys, rising with the level", () => {
  const t: GuardTuning = { levelCount: 5, firstLevelBits: 8, bitsStep: 2 };
  const keys = fc.sample(fc.uint8Array({ minLength: 8, maxLength: 24 }), { seed: 18, numRuns: 60_000 });
  const counts = [0, 0, 0, 0, 0];
  for (const key of keys)
    for (let level = 1; level < t.levelCount; level++) if (isGuard(key, level, t)) counts[level]!++;
  for (let level = 1; level < t.levelCount; level++) {
    const p = 2 ** -guardBits(level, t);
    const expected = keys.length * p;
    const fiveSigma = 5 * Math.sqrt(keys.length * p * (1 - p));
    expect({ level, guards: counts[level], near: Math.abs(counts[level]! - expected) <= fiveSigma }).toEqual({
      level,
      guards: counts[level],
      near: true,
    });
  }
  expect(counts.slice(1).map((count, i) => i === 0 || count > counts[i]!)).toEqual([true, true, true, true]);
});

test("the default choice reads 22 bits at level 1 and two fewer per level down to level 4", () => {
  expect([1, 2, 3, 4].map((level) => guardBits(level, DEFAULT_GUARD_TUNING))).toEqual([22, 20, 18, 16]);
  expect(() => guardBits(5, DEFAULT_GUARD_TUNING)).toThrow("level 5 has no guards");
  expect(() => assertGuardTuning({ levelCount: 3, firstLevelBits: 33, bitsStep: 1 })).toThrow("firstLevelBits 33");
});

import { assert } from "../../../errors.ts";

/**
 * Which keys are guards, and at which levels (PebblesDB's guard choice).
 *
 * A guard of level i is a key that starts a partition of that level: a level's tables are grouped
 * by guard, and no table of the level holds keys on both sides of one. Whether a key is a guard is
 * a pure function of its bytes, so every process, every restart and every Worker agrees on it:
 * the key's 64-bit wyhash (Bun.hash), read from its lowest bit up. A key is a guard of level i
 * (i ≥ 1) when the lowest `guardBits(i)` bits of the hash are all ones, a chance of 2^-guardBits(i).
 * `guardBits` falls by `bitsStep` per level, so each deeper level has 2^bitsStep times as many guards,
 * and a guard of level i is a guard of every deeper level (its hash already ends in enough ones).
 * Level 0 has no guards: its tables are whole memtable flushes and may overlap anywhere.
 *
 * With the defaults (22 bits at level 1, 2 fewer per level, levels 0–4) a guard spans on average
 * 2^22 ≈ 4 M distinct keys at level 1, 1 M at level 2, 256 K at level 3 and 64 K at level 4: for
 * 16-byte keys and 100-byte values about 500, 130, 33 and 8 MB of live data, so a store of
 * 10 M keys has a handful of guards at level 1 and about 150 at the bottom. Tests use a few bits
 * so that every level has guards among a few dozen keys.
 *
 *   key "a": hash …0111 (3 trailing ones)   firstLevelBits 4, bitsStep 1:
 *            level 1 needs 4 ones → no;  level 2 needs 3 → guard;  level 3 needs 2 → guard; …
 */
export interface GuardTuning {
  /** Levels 0 … levelCount − 1; the last one is the bottom (nothing older lies below it). */
  readonly levelCount: number;
  /** Trailing one-bits of the hash that make a key a guard of level 1: one key in 2^firstLevelBits. */
  readonly firstLevelBits: number;
  /** How many fewer bits each deeper level needs (never fewer than 1): 2^bitsStep times the guards. */
  readonly bitsStep: number;
}

export const DEFAULT_GUARD_TUNING: GuardTuning = { levelCount: 5, firstLevelBits: 22, bitsStep: 2 };

/** Bits of the hash (its low 32) that the choice reads: no level can ask for more. */
const HASH_BITS_READ = 32;

export function assertGuardTuning(tuning: GuardTuning): void {
  assert(Number.isInteger(tuning.levelCount) && tuning.levelCount >= 2, "an FLSM has level 0 and at least one more");
  assert(
    Number.isInteger(tuning.firstLevelBits) && tuning.firstLevelBits >= 1 && tuning.firstLevelBits <= HASH_BITS_READ,
    () => `firstLevelBits ${tuning.firstLevelBits} outside 1…${HASH_BITS_READ}`,
  );
  assert(Number.isInteger(tuning.bitsStep) && tuning.bitsStep >= 0, () => `bitsStep ${tuning.bitsStep} is not a count`);
}

/** The trailing one-bits a key's hash needs to be a guard of `level` (≥ 1). */
export function guardBits(level: number, tuning: GuardTuning): number {
  assert(level >= 1 && level < tuning.levelCount, () => `level ${level} has no guards`);
  return Math.max(1, tuning.firstLevelBits - (level - 1) * tuning.bitsStep);
}

/** How many of the lowest bits of the key's hash are ones, counted up to HASH_BITS_READ. */
function trailingOnes(key: Uint8Array): number {
  const low = Number(Bun.hash.wyhash(key) & 0xffffffffn);
  const zeros = ~low >>> 0; // its lowest set bit is the first zero of `low`
  return zeros === 0 ? HASH_BITS_READ : 31 - Math.clz32(zeros & -zeros);
}

/**
 * The shallowest level at which `key` is a guard; `tuning.levelCount` when it is a guard of none.
 * The key is a guard of exactly the levels from this one down to the bottom.
 */
export function firstGuardLevel(key: Uint8Array, tuning: GuardTuning): number {
  const ones = trailingOnes(key);
  for (let level = 1; level < tuning.levelCount; level++) if (ones >= guardBits(level, tuning)) return level;
  return tuning.levelCount;
}

export function isGuard(key: Uint8Array, level: number, tuning: GuardTuning): boolean {
  assert(level >= 0 && level < tuning.levelCount, () => `no level ${level} in ${tuning.levelCount}`);
  return level >= 1 && firstGuardLevel(key, tuning) <= level;
}

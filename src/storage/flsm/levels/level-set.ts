import { assert } from "../../../errors.ts";
import { compareKeyBytes, type KeyRange } from "../entry.ts";
import { newestFirst, type TableMeta, tableHoldsKey, tableOverlapsRange } from "./table-meta.ts";

/** A guard's key; null for the sentinel, which holds the keys before a level's first guard (and all of level 0). */
export type GuardKey = Uint8Array | null;

/** One partition of a level: the keys from its key up to the next guard's; its tables newest first. */
export interface Guard {
  readonly key: GuardKey;
  readonly tables: readonly TableMeta[];
}

/**
 * One step from a level set to the next, as plain data (what a flush or a compaction did, and what
 * the manifest logs): applied in this order — tables removed, guards added, tables added.
 */
export interface LevelChange {
  readonly removed: readonly { readonly level: number; readonly number: number }[];
  /** A guard added to a level is added to every deeper level that lacks it, in the same change. */
  readonly guardsAdded: readonly { readonly level: number; readonly key: Uint8Array }[];
  /** Each table with the guard (of its level) that holds it; level 0 tables go to the sentinel. */
  readonly added: readonly { readonly level: number; readonly guard: GuardKey; readonly table: TableMeta }[];
}

export function sameGuard(a: GuardKey, b: GuardKey): boolean {
  return a === null || b === null ? a === b : compareKeyBytes(a, b) === 0;
}

/**
 * The tables of every level, grouped by guard. Immutable: `apply` returns a new set, so a reader
 * keeps iterating the one it started with while flushes and compactions install theirs.
 *
 *   level 0   [#9 a…z r41–50] [#8 c…m r31–40]                  flushes, newest first, overlapping
 *   level 1   ∅: [#5 a…f]      "g": [#7 g…k r21–30] [#4 h…p r1–20]
 *   level 2   ∅: [#1 a…c]      "d": [#2 d…f]     "g": [#3 g…y]  (level 1's guard "g" is here too)
 *
 *   get "h"      → #9, #8, #7, #4, #3   (only the guard holding "h" at each level, newest first)
 *   get "b"      → #9, #5, #1
 *   add guard "j" at level 1 (and so at 2): refused — #7 and #4 hold keys on both sides of it
 *   scan [e, i)  → #9, #8, #5, #7, #4, #2, #3
 *
 * Invariants (asserted by `apply`): within a level ≥ 1, every table lies inside its guard (at or
 * after its key, before the next guard's); the guards of a level are guards of every deeper level.
 */
export class LevelSet {
  private constructor(
    /** levels[0] is one sentinel guard; levels[i ≥ 1] starts with the sentinel, then guards by key. */
    private readonly levels: readonly (readonly Guard[])[],
  ) {}

  static empty(levelCount: number): LevelSet {
    assert(levelCount >= 2, "an FLSM has level 0 and at least one more");
    return new LevelSet(Array.from({ length: levelCount }, () => [{ key: null, tables: [] }]));
  }

  get levelCount(): number {
    return this.levels.length;
  }

  /** The guards of `level`, the sentinel first. */
  guards(level: number): readonly Guard[] {
    return levelGuards(this.levels, level);
  }

  /** The index (in `guards(level)`) of the guard that holds `key`: the last guard at or before it. */
  guardIndex(level: number, key: Uint8Array): number {
    return guardHolding(this.guards(level), key);
  }

  hasGuard(level: number, key: Uint8Array): boolean {
    return hasGuard(this.guards(level), key);
  }

  /** Every table of `level`, guard by guard. */
  tables(level: number): TableMeta[] {
    return this.guards(level).flatMap((guard) => guard.tables);
  }

  /**
   * The tables a read of `key` consults, in the order that lets it stop at the first one holding a
   * version it can see: level 0 newest first, then at each deeper level only the guard that holds
   * the key, newest first. Tables whose key range leaves `key` out are not listed.
   */
  tablesForGet(key: Uint8Array): TableMeta[] {
    const found: TableMeta[] = [];
    for (let level = 0; level < this.levels.length; level++)
      for (const table of guardAt(this.guards(level), this.guardIndex(level, key)).tables)
        if (tableHoldsKey(table, key)) found.push(table);
    return found;
  }

  /**
   * The tables of `level` with keys in `range`, per guard in key order (guards with none left out),
   * newest first within a guard: the guards hold disjoint keys, so a scan walks them one after the
   * other and merges only one guard's tables at a time.
   */
  guardsInRange(level: number, range: KeyRange): TableMeta[][] {
    const guards = this.guards(level);
    const first = range.start === undefined ? 0 : this.guardIndex(level, range.start);
    const found: TableMeta[][] = [];
    for (const guard of guards.slice(first)) {
      if (guard.key !== null && range.end !== undefined && compareKeyBytes(guard.key, range.end) >= 0) break;
      const tables = guard.tables.filter((table) => tableOverlapsRange(table, range));
      if (tables.length > 0) found.push(tables);
    }
    return found;
  }

  /** The tables of `level` with keys in `range`, guard by guard, newest first within a guard. */
  tablesInRange(level: number, range: KeyRange): TableMeta[] {
    return this.guardsInRange(level, range).flat();
  }

  /** Tables, bytes and guards per level, for the engine's metrics. */
  stats(): { level: number; tables: number; bytes: number; guards: number }[] {
    return this.levels.map((guards, level) => {
      const tables = guards.flatMap((guard) => guard.tables);
      const bytes = tables.reduce((sum, table) => sum + table.sizeBytes, 0);
      return { level, tables: tables.length, bytes, guards: guards.length - 1 };
    });
  }

  apply(change: LevelChange): LevelSet {
    const levels = this.levels.map((guards) => [...guards]);
    removeTables(levels, change.removed);
    for (const { level, key } of change.guardsAdded) addGuard(levels, level, key);
    for (const { level, key } of change.guardsAdded)
      for (let deeper = level + 1; deeper < levels.length; deeper++)
        assert(
          hasGuard(levelGuards(levels, deeper), key),
          () => `guard ${hex(key)} of level ${level} missing at ${deeper}`,
        );
    for (const added of change.added) addTable(levels, added);
    return new LevelSet(levels);
  }
}

type MutableLevels = Guard[][];

function levelGuards<T extends readonly Guard[]>(levels: readonly T[], level: number): T {
  const guards = levels[level];
  assert(guards !== undefined, () => `no level ${level} in ${levels.length}`);
  return guards;
}

/** `guards[index]`, which must exist. */
function guardAt(guards: readonly Guard[], index: number): Guard {
  const guard = guards[index];
  assert(guard !== undefined, () => `no guard ${index} in ${guards.length}`);
  return guard;
}

/** The index of the guard that holds `key`: the last one at or before it (the sentinel holds the keys before the first). */
function guardHolding(guards: readonly Guard[], key: Uint8Array): number {
  let low = 0;
  let high = guards.length - 1;
  while (low < high) {
    const middle = (low + high + 1) >> 1;
    // Every guard after the sentinel (index 0) has a key.
    if (compareKeyBytes(guardAt(guards, middle).key as Uint8Array, key) <= 0) low = middle;
    else high = middle - 1;
  }
  return low;
}

function hasGuard(guards: readonly Guard[], key: Uint8Array): boolean {
  return sameGuard(guardAt(guards, guardHolding(guards, key)).key, key);
}

function hex(key: GuardKey): string {
  return key === null ? "(sentinel)" : Buffer.from(key).toString("hex");
}

function removeTables(levels: MutableLevels, removed: LevelChange["removed"]): void {
  for (const { level, number } of removed) {
    const guards = levelGuards(levels, level);
    const at = guards.findIndex((guard) => guard.tables.some((table) => table.number === number));
    assert(at >= 0, () => `table ${number} is not in level ${level}`);
    const { key, tables } = guardAt(guards, at);
    guards[at] = { key, tables: tables.filter((table) => table.number !== number) };
  }
}

/** Splits the guard holding `key`: its tables at or after `key` move to the new guard. */
function addGuard(levels: MutableLevels, level: number, key: Uint8Array): void {
  assert(level >= 1, "level 0 has no guards");
  const guards = levelGuards(levels, level);
  const at = guardHolding(guards, key);
  const split = guardAt(guards, at);
  assert(!sameGuard(split.key, key), () => `guard ${hex(key)} is already in level ${level}`);
  const before: TableMeta[] = [];
  const after: TableMeta[] = [];
  for (const table of split.tables) {
    if (compareKeyBytes(table.largest, key) < 0) before.push(table);
    else {
      assert(compareKeyBytes(table.smallest, key) >= 0, () => `guard ${hex(key)} would split table ${table.number}`);
      after.push(table);
    }
  }
  guards.splice(at, 1, { key: split.key, tables: before }, { key, tables: after });
}

function addTable(levels: MutableLevels, { level, guard, table }: LevelChange["added"][number]): void {
  assert(compareKeyBytes(table.smallest, table.largest) <= 0, () => `table ${table.number}: smallest after largest`);
  assert(table.minRevision <= table.maxRevision, () => `table ${table.number}: revisions reversed`);
  const guards = levelGuards(levels, level);
  assert(
    guards.every((held) => held.tables.every(({ number }) => number !== table.number)),
    () => `table ${table.number} is already in level ${level}`,
  );
  const at = guardHolding(guards, table.smallest);
  const holder = guardAt(guards, at);
  assert(sameGuard(holder.key, guard), () => `table ${table.number} belongs in guard ${hex(holder.key)}`);
  const next = guards[at + 1]?.key;
  assert(
    next === undefined || compareKeyBytes(table.largest, next as Uint8Array) < 0,
    () => `table ${table.number} crosses guard ${hex(next ?? null)} of level ${level}`,
  );
  guards[at] = { key: holder.key, tables: [...holder.tables, table].sort(newestFirst) };
}

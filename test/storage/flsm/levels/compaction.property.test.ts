import { expect, test } from "bun:test";
import fc from "fast-check";
import { compareKeyBytes, type Entry } from "../../../../src/storage/flsm/entry.ts";
import { estimatedEntryBytes, runCompaction } from "../../../../src/storage/flsm/levels/compaction.ts";
import { type CompactionTuning, pickCompaction } from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import { type GuardTuning, isGuard } from "../../../../src/storage/flsm/levels/guards.ts";
import { type GuardKey, LevelSet } from "../../../../src/storage/flsm/levels/level-set.ts";
import type { TableMeta } from "../../../../src/storage/flsm/levels/table-meta.ts";
import { mergeRuns } from "../../../../src/storage/flsm/merge.ts";
import { bytes } from "./tables.ts";

/**
 * A small engine around the levels: writes go to a memtable, flushes make level-0 tables, and after
 * each flush the picker's jobs run until none is due. The model is every version ever written:
 * a read at a revision at or above the GC floor must find what the model finds, after every step.
 * Guards are dense (one key in 8 at level 1, one in 2 at the bottom), so every level and guard is hit.
 */
const guardTuning: GuardTuning = { levelCount: 4, firstLevelBits: 3, bitsStep: 1 };
const KEYS = [..."abcdefghijklmnopqrstuvwxyz", "ma", "mb", "pz"].map(bytes).sort(compareKeyBytes);

const operation = fc.record({
  key: fc.integer({ min: 0, max: KEYS.length - 1 }),
  tombstone: fc.boolean(),
  flush: fc.boolean(),
  /** Percent of the distance to the current revision that the GC floor moves up. */
  floorStep: fc.option(fc.integer({ min: 0, max: 100 }), { freq: 3 }),
});

const scenario = fc.record({
  operations: fc.array(operation, { minLength: 1, maxLength: 200, size: "large" }),
  maxTableBytes: fc.integer({ min: 18, max: 160 }),
  compaction: fc.record({
    level0CompactionTables: fc.integer({ min: 1, max: 3 }),
    level0SlowdownTables: fc.constant(8),
    level0StopTables: fc.constant(12),
    firstLevelGuardBytes: fc.integer({ min: 20, max: 200 }),
    guardBytesGrowth: fc.constant(2),
    guardRunsMax: fc.integer({ min: 2, max: 3 }),
  }),
});

function newestAtOrBelow(entries: readonly Entry[], key: Uint8Array, revision: number): Entry | undefined {
  let found: Entry | undefined;
  for (const e of entries)
    if (compareKeyBytes(e.key, key) === 0 && e.revision <= revision && (!found || e.revision > found.revision))
      found = e;
  return found;
}

const shown = (e: Entry | undefined): string | null => (e?.value ? new TextDecoder().decode(e.value) : null);

class Engine {
  levels = LevelSet.empty(guardTuning.levelCount);
  readonly contents = new Map<number, Entry[]>();
  memtable: Entry[] = [];
  private nextNumber = 1;

  constructor(
    private readonly maxTableBytes: number,
    private readonly tuning: CompactionTuning,
  ) {}

  /** A table of `entries` (already in internal-key order), stored under a new number. */
  store(entries: Entry[]): TableMeta {
    const number = this.nextNumber++;
    this.contents.set(number, entries);
    const revisions = entries.map((e) => e.revision);
    return {
      number,
      sizeBytes: entries.reduce((sum, e) => sum + estimatedEntryBytes(e), 0),
      smallest: entries[0]!.key,
      largest: entries.at(-1)!.key,
      minRevision: Math.min(...revisions),
      maxRevision: Math.max(...revisions),
      entries: entries.length,
    };
  }

  flush(): void {
    if (this.memtable.length === 0) return;
    const sorted = [...this.memtable].sort((a, b) => compareKeyBytes(a.key, b.key) || b.revision - a.revision);
    const table = this.store(sorted);
    this.levels = this.levels.apply({ removed: [], guardsAdded: [], added: [{ level: 0, guard: null, table }] });
    this.memtable = [];
  }

  /** Runs due jobs until none is left; checks each one's output. */
  async compact(floor: number): Promise<void> {
    for (let round = 0; round < 200; round++) {
      const job = pickCompaction(this.levels, this.tuning);
      if (job === undefined) return;
      const written: { guard: GuardKey; entries: Entry[] }[] = [];
      const sink = {
        startTable: (guard: GuardKey) => {
          written.push({ guard, entries: [] });
        },
        add: (entry: Entry) => {
          written.at(-1)!.entries.push(entry);
        },
        finishTable: () => this.store(written.at(-1)!.entries),
      };
      const inputs = job.inputs.map((t) => this.contents.get(t.number)!.values());
      const options = { floor, maxTableBytes: this.maxTableBytes, guards: guardTuning };
      const result = await runCompaction(job, this.levels, mergeRuns(inputs), options, sink);
      this.levels = this.levels.apply(result.change);
      checkOutput(this.levels, job.targetLevel, result.change.added, written, this.maxTableBytes);
      // New guards are keys the hash makes guards of the level they join.
      for (const { level, key } of result.change.guardsAdded) expect(isGuard(key, level, guardTuning)).toBe(true);
      expect(result.bytesRead).toBe(job.inputs.reduce((sum, t) => sum + t.sizeBytes, 0));
    }
    throw new Error("compactions did not settle within 200 jobs");
  }

  /** The engine's read: memtable, then the tables in the level set's order, stopping at the first version found. */
  read(key: Uint8Array, revision: number): Entry | undefined {
    const inMemtable = newestAtOrBelow(this.memtable, key, revision);
    if (inMemtable) return inMemtable;
    for (const table of this.levels.tablesForGet(key)) {
      const found = newestAtOrBelow(this.contents.get(table.number)!, key, revision);
      if (found) return found;
    }
    return undefined;
  }
}

function checkOutput(
  levels: LevelSet,
  level: number,
  added: readonly { guard: GuardKey; table: TableMeta }[],
  written: readonly { guard: GuardKey; entries: Entry[] }[],
  maxTableBytes: number,
): void {
  expect(added.map((a) => a.guard)).toEqual(written.map((w) => w.guard));
  added.forEach(({ table }, i) => {
    // Inside one guard of the level it went to.
    expect(levels.guardIndex(level, table.smallest)).toBe(levels.guardIndex(level, table.largest));
    // Ended at the first key boundary at or past the size bound: without its last key it was under it.
    const entries = written[i]!.entries;
    const lastKeyBytes = entries
      .filter((e) => compareKeyBytes(e.key, table.largest) === 0)
      .reduce((sum, e) => sum + estimatedEntryBytes(e), 0);
    expect(table.sizeBytes - lastKeyBytes).toBeLessThan(maxTableBytes);
    // One key's versions never straddle two tables.
    const next = added[i + 1]?.table;
    if (next) expect(compareKeyBytes(table.largest, next.smallest)).toBeLessThan(0);
  });
  for (let upper = 1; upper + 1 < levels.levelCount; upper++)
    for (const guard of levels.guards(upper).slice(1)) expect(levels.hasGuard(upper + 1, guard.key!)).toBe(true);
}

test("after flushes and compactions, every read at or above the GC floor finds what the model finds", async () => {
  await fc.assert(
    fc.asyncProperty(scenario, async ({ operations, maxTableBytes, compaction }) => {
      const engine = new Engine(maxTableBytes, compaction);
      const history: Entry[] = [];
      let floor = 0;
      for (const [i, op] of operations.entries()) {
        const revision = i + 1;
        const value = op.tombstone ? null : bytes(`v${revision}`);
        const entry: Entry = { key: KEYS[op.key]!, revision, value, createRevision: revision, version: 1 };
        history.push(entry);
        engine.memtable.push(entry);
        if (op.floorStep !== null) floor += Math.floor(((revision - floor) * op.floorStep) / 100);
        if (!op.flush && i < operations.length - 1) continue;
        engine.flush();
        await engine.compact(floor);
        for (const key of KEYS)
          for (let at = floor; at <= revision; at++)
            expect({ key: String(key), at, found: shown(engine.read(key, at)) }).toEqual({
              key: String(key),
              at,
              found: shown(newestAtOrBelow(history, key, at)),
            });
      }
    }),
    { numRuns: 150 },
  );
});

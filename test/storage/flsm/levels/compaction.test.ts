import { expect, test } from "bun:test";
import type { Entry } from "../../../../src/storage/flsm/entry.ts";
import { runCompaction } from "../../../../src/storage/flsm/levels/compaction.ts";
import { compactionJob } from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import type { GuardTuning } from "../../../../src/storage/flsm/levels/guards.ts";
import { type GuardKey, LevelSet } from "../../../../src/storage/flsm/levels/level-set.ts";
import { retainedVersions } from "../../../../src/storage/flsm/levels/retained-versions.ts";
import { WriteAmplification } from "../../../../src/storage/flsm/levels/write-amplification.ts";
import { mergeRuns } from "../../../../src/storage/flsm/merge.ts";
import { bytes, table } from "./tables.ts";

/** With these bits "d" is a guard from level 1 down, "m" from level 1, "b c q r" of no level (guards.test.ts checks the hash). */
const guards: GuardTuning = { levelCount: 4, firstLevelBits: 3, bitsStep: 1 };
const text = (data: Uint8Array | null): string | null => data && new TextDecoder().decode(data);

function version(key: string, revision: number, value: string | null = `v${revision}`): Entry {
  return {
    key: bytes(key),
    revision,
    value: value === null ? null : bytes(value),
    createRevision: revision,
    version: 1,
  };
}

test("retained versions: all above the floor, the newest at or below it, and that one too unless a tombstone at the bottom", () => {
  const versions = [version("k", 9), version("k", 7, null), version("k", 4), version("k", 2), version("l", 1, null)];
  const kept = (floor: number, bottom: boolean) =>
    [...retainedVersions(versions.values(), floor, bottom)].map((e) => `${text(e.key)}${e.revision}`);
  expect(kept(6, false)).toEqual(["k9", "k7", "k4", "l1"]);
  expect(kept(8, false)).toEqual(["k9", "k7", "l1"]);
  expect(kept(8, true)).toEqual(["k9"]);
  expect(kept(0, true)).toEqual(["k9", "k7", "k4", "k2", "l1"]);
  expect(() => [...retainedVersions([version("k", 1), version("k", 2)].values(), 0, false)]).toThrow(
    "compaction input out of internal-key order",
  );
});

/** Level 1's two tables (keys b d q and c m r) compacted into level 2, whose guard "m" is in level 3 too. */
async function compactExample(below: { level: number; guard: GuardKey; range: string }[]) {
  const contents = new Map([
    [1, [version("b", 1), version("d", 2), version("q", 3)]],
    [2, [version("c", 4), version("m", 5), version("r", 6)]],
  ]);
  const levels = LevelSet.empty(4).apply({
    removed: [],
    guardsAdded: [2, 3].map((level) => ({ level, key: bytes("m") })),
    added: [
      { level: 1, guard: null, table: table(1, "b…q", [1, 3], 60) },
      { level: 1, guard: null, table: table(2, "c…r", [4, 6], 60) },
      ...below.map(({ level, guard, range }, i) => ({ level, guard, table: table(10 + i, range, [0, 0], 5) })),
    ],
  });
  const job = compactionJob(levels, 1, 0);
  const tables: { guard: string | null; keys: string[] }[] = [];
  let number = 100;
  const sink = {
    startTable: (guard: GuardKey) => {
      tables.push({ guard: text(guard), keys: [] });
    },
    add: (entry: Entry) => {
      tables.at(-1)!.keys.push(text(entry.key)!);
    },
    finishTable: () => ({ number: number++, sizeBytes: 30 }),
  };
  const merged = mergeRuns(job.inputs.map((input) => contents.get(input.number)!.values()));
  // Each entry is estimated at 19 bytes (1 of key, 2 of value, 16 of overhead): two fill a table.
  const result = await runCompaction(job, levels, merged, { floor: 0, maxTableBytes: 38, guards }, sink);
  return { job, tables, result, after: levels.apply(result.change) };
}

test("a compaction splits its output at the target level's guards, the new ones its keys make, and the size bound", async () => {
  const { job, tables, result, after } = await compactExample([]);
  expect(job.bottom).toBe(true);
  expect(tables).toEqual([
    { guard: null, keys: ["b", "c"] },
    { guard: "d", keys: ["d"] },
    { guard: "m", keys: ["m", "q"] },
    { guard: "m", keys: ["r"] },
  ]);
  expect(result.change.guardsAdded.map(({ level, key }) => [level, text(key)])).toEqual([
    [2, "d"],
    [3, "d"],
  ]);
  expect(result.change.removed).toEqual([
    { level: 1, number: 2 },
    { level: 1, number: 1 },
  ]);
  expect(result.change.added.map(({ guard, table }) => [text(guard), table.number, text(table.smallest)])).toEqual([
    [null, 100, "b"],
    ["d", 101, "d"],
    ["m", 102, "m"],
    ["m", 103, "r"],
  ]);
  expect(result.change.added[0]!.table).toMatchObject({ minRevision: 1, maxRevision: 4, entries: 2, sizeBytes: 30 });
  expect([result.bytesRead, result.bytesWritten, result.entriesRead, result.entriesWritten]).toEqual([120, 120, 6, 6]);
  expect(after.tables(1)).toEqual([]);
  expect(after.guards(3).map((g) => text(g.key))).toEqual([null, "d", "m"]);
});

test("a new guard waits while a table below holds keys on both sides of it", async () => {
  const { job, tables, result } = await compactExample([{ level: 3, guard: null, range: "a…e" }]);
  expect(job.bottom).toBe(false);
  expect(tables.map((t) => [t.guard, t.keys.join("")])).toEqual([
    [null, "bc"],
    [null, "d"],
    ["m", "mq"],
    ["m", "r"],
  ]);
  expect(result.change.guardsAdded).toEqual([]);
});

test("write amplification: table bytes written by flushes and compactions per user byte, and into each level", () => {
  const amplification = new WriteAmplification();
  expect(amplification.ratio).toBe(0);
  amplification.recordUserWrite(100);
  amplification.recordFlush(110);
  amplification.recordCompaction({ bytesRead: 300, bytesWritten: 200 }, 1);
  amplification.recordCompaction({ bytesRead: 40, bytesWritten: 80 }, 3);
  expect(amplification.ratio).toBeCloseTo(3.9);
  expect([amplification.compactions, amplification.compactionBytesRead]).toEqual([2, 340]);
  expect(Array.from(amplification.writtenByLevel, (bytes) => bytes ?? 0)).toEqual([110, 200, 0, 80]);
});

import { describe, expect, test } from "bun:test";
import type { FileSystem } from "../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { type CompactHook, type FlsmEngine, openFlsmEngine } from "../../../src/storage/flsm/disk-engine.ts";
import { tableFileName } from "../../../src/storage/flsm/disk-levels.ts";
import type { Entry } from "../../../src/storage/flsm/entry.ts";
import {
  type CompactionSink,
  estimatedEntryBytes,
  runCompaction,
} from "../../../src/storage/flsm/levels/compaction.ts";
import type { CompactionTuning } from "../../../src/storage/flsm/levels/compaction-picker.ts";
import type { GuardTuning } from "../../../src/storage/flsm/levels/guards.ts";
import type { TableMeta } from "../../../src/storage/flsm/levels/table-meta.ts";
import { mergeRuns } from "../../../src/storage/flsm/merge.ts";
import { BlockCache } from "../../../src/storage/flsm/table/block-cache.ts";
import { TableReader } from "../../../src/storage/flsm/table/reader.ts";
import { writeTableFile } from "../../../src/storage/flsm/table-file-writer.ts";
import { createMvccStore, type MvccStore } from "../../../src/storage/mvcc/store.ts";
import type { LogEntry } from "../../../src/storage/ops.ts";
import { del, put } from "../../helpers/storage.ts";
import { waitFor } from "../../helpers/wait.ts";

const DIR = "/data/flsm";
const TABLE = { blockBytes: 64, restartInterval: 2 };
/** Dense guards: one key in 4 at level 1, one in 2 at level 2 (the bottom). */
const GUARDS: GuardTuning = { levelCount: 3, firstLevelBits: 2, bitsStep: 1 };
const COMPACTION: CompactionTuning = {
  level0CompactionTables: 2,
  level0SlowdownTables: 8,
  level0StopTables: 12,
  firstLevelGuardBytes: 300,
  guardBytesGrowth: 2,
  guardRunsMax: 2,
};

/**
 * A compaction runner for these tests, in process: `runCompaction` over the inputs' entries, its
 * tables buffered and written once it returns (the engine's runner writes them as they come, in a
 * Worker). What the engine does with the result is what is tested: the manifest edit, the level set
 * installed, the inputs deleted.
 */
function inProcessCompactor(fs: FileSystem): CompactHook {
  return async ({ job, levels, floor, dir, allocateFileNumber }) => {
    const cache = new BlockCache(0);
    const inputs = await Promise.all(
      job.inputs.map((table) => TableReader.open(fs, `${dir}/${tableFileName(table.number)}`, cache)),
    );
    const tables: { number: number; entries: Entry[] }[] = [];
    const sink: CompactionSink = {
      startTable: () => void tables.push({ number: allocateFileNumber(), entries: [] }),
      add: (entry) => void tables.at(-1)!.entries.push(entry),
      finishTable: () => ({
        number: tables.at(-1)!.number,
        sizeBytes: tables.at(-1)!.entries.reduce((sum, entry) => sum + estimatedEntryBytes(entry), 0),
      }),
    };
    const merged = mergeRuns(inputs.map((reader) => reader.entries({})));
    const result = await runCompaction(job, levels, merged, { floor, maxTableBytes: 200, guards: GUARDS }, sink);
    for (const reader of inputs) reader.close();
    const written = new Map<number, TableMeta>();
    for (const { number, entries } of tables)
      written.set(number, await writeTableFile(fs, dir, `${dir}/${tableFileName(number)}`, number, entries, TABLE));
    const added = result.change.added.map((placed) => ({ ...placed, table: written.get(placed.table.number)! }));
    return { ...result, change: { ...result.change, added } };
  };
}

/** Every key's record at every readable revision, and a scan at each: what the two stores must agree on. */
function expectSameReads(store: MvccStore, model: MvccStore, keys: readonly string[]): void {
  expect(store.revision).toBe(model.revision);
  for (let revision = Math.max(0, model.compactedRevision); revision <= model.revision; revision++) {
    expect(store.readRecords(keys, revision)).toEqual(model.readRecords(keys, revision));
    expect(store.scan({ limit: 1_000, revision })).toEqual(model.scan({ limit: 1_000, revision }));
  }
}

async function tableFiles(fs: MemoryFileSystem): Promise<string[]> {
  return (await fs.list(DIR)).filter((name) => name.endsWith(".sst")).sort();
}

const tablesIn = (engine: FlsmEngine) => engine.stats().levels.reduce((sum, level) => sum + level.tables, 0);

describe("the FLSM engine on disk", () => {
  test("tables no manifest names (a flush or compaction cut short) are deleted at open; named ones stay", async () => {
    const fs = new MemoryFileSystem();
    const engine = await openFlsmEngine({ fs, dir: DIR, memtableBytes: 1, storeOptions: {}, tuning: { table: TABLE } });
    for (let revision = 1; revision <= 3; revision++) engine.store.apply({ revision, ops: [put(`k${revision}`, "v")] });
    await engine.store.flushAll();
    await engine.close();
    const named = await tableFiles(fs);
    expect(named.length).toBe(3);
    fs.overwrite(`${DIR}/${tableFileName(99)}`, new Uint8Array([1, 2, 3]));
    fs.overwrite(`${DIR}/${tableFileName(4)}`, fs.bytes(`${DIR}/${named[0]}`));
    fs.overwrite(`${DIR}/notes.txt`, new Uint8Array([1]));
    const reopened = await openFlsmEngine({ fs, dir: DIR, storeOptions: {} });
    expect(await tableFiles(fs)).toEqual(named);
    expect((await fs.list(DIR)).includes("notes.txt")).toBe(true);
    expect(reopened.store.read(["k1", "k2", "k3"]).map((value) => value?.length)).toEqual([1, 1, 1]);
    expect(reopened.flushedRevision).toBe(3);
    await reopened.close();
  });

  test("a compaction drops no version a reader may read after a crash that loses the log's unsynced tail", async () => {
    // Under fsync everysec a Compact command is applied before it is durable. A compaction that used
    // its floor would drop versions that the revisions still readable after a power cut show.
    const fs = new MemoryFileSystem();
    const open = () =>
      openFlsmEngine({
        fs,
        dir: DIR,
        storeOptions: { historyRevisions: 100 },
        compact: inProcessCompactor(fs),
        tuning: { table: TABLE, guards: GUARDS, compaction: COMPACTION },
      });
    const durable: LogEntry[] = [
      { revision: 1, ops: [put("k", "a")] },
      { revision: 2, ops: [put("k", "b")] },
      { revision: 3, ops: [put("k", "c")] },
    ];
    const model = createMvccStore({ historyRevisions: 100 });
    for (const entry of durable) model.apply(entry);
    let engine = await open();
    engine.store.apply(durable[0]!);
    engine.store.apply(durable[1]!);
    await engine.store.flushAll();
    engine.store.apply(durable[2]!);
    const flushed = engine.store.flushAll(); // the second table at level 0: a compaction follows it
    engine.store.apply({ revision: 4, kind: "compact", compactTo: 4 }); // applied, never synced
    await flushed;
    await waitFor(() => engine.stats().compactions === 1, {
      what: "the compaction after the second flush",
      detail: () => JSON.stringify(engine.stats()),
    });
    await engine.close();
    fs.crash();
    engine = await open();
    expect(engine.flushedRevision).toBe(3);
    expectSameReads(engine.store, model, ["k"]);
    await engine.close();
  });

  test("compactions through the compact seam: logged, installed, inputs deleted; reads stay the memory engine's, across a reopen", async () => {
    const fs = new MemoryFileSystem();
    const random = mulberry32(7);
    const keys = Array.from({ length: 30 }, (_, i) => `key${String(i).padStart(2, "0")}`);
    const log: LogEntry[] = [];
    const open = async () => {
      const engine = await openFlsmEngine({
        fs,
        dir: DIR,
        memtableBytes: 2_000,
        storeOptions: { historyRevisions: 3 },
        compact: inProcessCompactor(fs),
        tuning: { table: TABLE, guards: GUARDS, compaction: COMPACTION },
      });
      for (const entry of log) if (entry.revision > engine.flushedRevision) engine.store.apply(entry);
      return engine;
    };
    const idle = (engine: FlsmEngine) =>
      waitFor(
        () => {
          const stats = engine.stats();
          return stats.memtable.frozen === 0 && !stats.compacting;
        },
        { what: "flushes and compactions to finish", detail: () => JSON.stringify(engine.stats()) },
      );
    const model = createMvccStore({ historyRevisions: 3 });
    let engine = await open();
    for (let i = 0; i < 400; i++) {
      const key = keys[Math.floor(random() * keys.length)]!;
      const entry: LogEntry = {
        revision: model.revision + 1,
        ops: [random() < 0.2 ? del(key) : put(key, `value ${i} `.repeat(1 + Math.floor(random() * 3)))],
      };
      model.apply(entry);
      engine.store.apply(entry);
      log.push(entry);
      if (i % 50 === 49) {
        await idle(engine);
        expectSameReads(engine.store, model, keys);
      }
    }
    await idle(engine);
    const stats = engine.stats();
    expect(stats.compactions).toBeGreaterThan(5);
    expect(stats.compactionFailures).toBe(0);
    expect(stats.levels.slice(1).every((level) => level.tables > 0 && level.guards > 0)).toBe(true);
    expect(stats.writeAmplification).toBeGreaterThan(1);
    // The tables' indexes and filters take the block cache's room.
    expect(stats.tableMemoryBytes).toBeGreaterThan(0);
    expect(stats.blockCache.roomBytes).toBe(stats.blockCache.capacityBytes - stats.tableMemoryBytes);
    // Only the tables of the level set are on disk: every compaction's inputs went.
    expect((await tableFiles(fs)).length).toBe(tablesIn(engine));
    expectSameReads(engine.store, model, keys);

    await engine.close();
    fs.crash();
    engine = await open();
    expect(tablesIn(engine)).toBe(stats.levels.reduce((sum, level) => sum + level.tables, 0));
    // The sum kept across the compactions' installs is the one a fresh open counts.
    expect(engine.stats().tableMemoryBytes).toBe(stats.tableMemoryBytes);
    expect(engine.stats().blockCache.roomBytes).toBe(stats.blockCache.roomBytes);
    expectSameReads(engine.store, model, keys);
    expect(engine.store.stats()).toMatchObject({ keys: model.stats().keys, valueBytes: model.stats().valueBytes });
    await engine.close();
  });
});

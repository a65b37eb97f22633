import { assert, HomeKvError } from "../../errors.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import type { KeyRange } from "./entry.ts";
import { LevelRun } from "./level-run.ts";
import type { LevelChange, LevelSet } from "./levels/level-set.ts";
import type { TableMeta } from "./levels/table-meta.ts";
import type { RunSource } from "./runs.ts";
import type { BlockCache } from "./table/block-cache.ts";
import { TableReader } from "./table/reader.ts";

/** A table's file in the engine's directory: `<number>.sst`. */
export const tableFileName = (number: number): string => `${number}.sst`;

/** The number of a table file's name; undefined for any other name. */
export function parseTableFileName(name: string): number | undefined {
  const match = /^([1-9][0-9]*)\.sst$/.exec(name);
  return match ? Number(match[1]) : undefined;
}

/**
 * The levels on disk as the store reads them (a RunSource): the level set of the moment and an
 * open TableReader for each of its tables, all sharing one block cache (whose room their indexes
 * and Bloom filters take: BlockCache.reserve). Opening a reader is asynchronous and reads are
 * not, so a table's reader is opened before the level set naming it is installed: at start for
 * every table, at a flush or compaction for its new ones.
 *
 * `install` swaps the level set in one step, between two reads: a read sees the set before or the
 * one after, never a mix. Readers of removed tables are closed at once; no read keeps one across
 * turns (scans are cut into synchronous pages).
 */
export class DiskLevels implements RunSource {
  private readonly readers = new Map<number, TableReader>();
  private entries = 0;
  /** The open readers' memoryBytes, summed as they come and go (read at every install). */
  private tableMemory = 0;

  private constructor(
    private set: LevelSet,
    readonly cache: BlockCache,
  ) {}

  /** Opens a reader for every table of `levels` in `dir`; a table that does not open (damage) closes the others. */
  static async open(fs: FileSystem, dir: string, levels: LevelSet, cache: BlockCache): Promise<DiskLevels> {
    const disk = new DiskLevels(levels, cache);
    try {
      for (const table of allTables(levels)) disk.adopt(table, await openTable(fs, dir, table.number, cache));
      cache.reserve(disk.memoryBytes);
    } catch (error) {
      disk.close();
      throw error;
    }
    return disk;
  }

  get levels(): LevelSet {
    return this.set;
  }

  get entryCount(): number {
    return this.entries;
  }

  /** What the open tables hold in memory: their block indexes and Bloom filters. */
  get memoryBytes(): number {
    return this.tableMemory;
  }

  runsFor(key: Uint8Array): TableReader[] {
    const tables = this.set.tablesForGet(key);
    const readers: TableReader[] = new Array(tables.length);
    for (let i = 0; i < tables.length; i++) readers[i] = this.reader(tables[i]!.number);
    return readers;
  }

  /** Per level with tables in `range`, one run of its guards (level-run.ts), level 0 first. */
  runsOverlapping(range: KeyRange): LevelRun[] {
    const runs: LevelRun[] = [];
    for (let level = 0; level < this.set.levelCount; level++) {
      const guards = this.set.guardsInRange(level, range);
      if (guards.length > 0)
        runs.push(new LevelRun(guards.map((tables) => tables.map((table) => this.reader(table.number)))));
    }
    return runs;
  }

  /** A reader of a table of the installed set. */
  reader(number: number): TableReader {
    const reader = this.readers.get(number);
    assert(reader !== undefined, () => `table ${number} has no open reader`);
    return reader;
  }

  /**
   * Makes `change` the levels' next state: `opened` holds a reader for each table it adds. The
   * readers of the tables it removes are closed; the caller deletes their files.
   */
  install(change: LevelChange, opened: ReadonlyMap<number, TableReader>): void {
    const next = this.set.apply(change);
    for (const { table } of change.added) {
      const reader = opened.get(table.number);
      assert(reader !== undefined, () => `table ${table.number} is installed without a reader`);
      this.adopt(table, reader);
    }
    for (const { number } of change.removed) {
      const reader = this.reader(number);
      this.entries -= reader.properties.entryCount;
      this.tableMemory -= reader.memoryBytes;
      this.readers.delete(number);
      reader.close();
    }
    this.set = next;
    // The tables' indexes and filters take the block cache's room: together they keep to its bytes.
    this.cache.reserve(this.memoryBytes);
  }

  close(): void {
    for (const reader of this.readers.values()) reader.close();
    this.readers.clear();
  }

  private adopt(table: TableMeta, reader: TableReader): void {
    const { entryCount, minRevision, maxRevision } = reader.properties;
    if (entryCount !== table.entries || minRevision !== table.minRevision || maxRevision !== table.maxRevision) {
      reader.close();
      throw new HomeKvError(
        "E_CORRUPT",
        `${reader.path} is not the table the manifest names: ${entryCount} entries at revisions ` +
          `${minRevision}..${maxRevision}, the manifest says ${table.entries} at ${table.minRevision}..${table.maxRevision}`,
      );
    }
    this.readers.set(table.number, reader);
    this.entries += table.entries;
    this.tableMemory += reader.memoryBytes;
  }
}

export function openTable(fs: FileSystem, dir: string, number: number, cache: BlockCache): Promise<TableReader> {
  return TableReader.open(fs, `${dir}/${tableFileName(number)}`, cache);
}

function allTables(levels: LevelSet): TableMeta[] {
  return Array.from({ length: levels.levelCount }, (_, level) => levels.tables(level)).flat();
}

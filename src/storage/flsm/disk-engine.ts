import { describeError, HomeKvError, STORE_CLOSED_MESSAGE } from "../../errors.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import { realTimers } from "../../timers.ts";
import type { BackupContents } from "../backup/backup-contents.ts";
import type { StoreOptions } from "../mvcc/store-types.ts";
import { backupTables } from "./backup-tables.ts";
import { DiskLevels, openTable, parseTableFileName, tableFileName } from "./disk-levels.ts";
import type { Entry } from "./entry.ts";
import {
  createFlsmStore,
  type FlsmStore,
  type FlushPoint,
  MEMTABLE_BYTES_DEFAULT,
  type MemtableStats,
} from "./flsm-store.ts";
import type { CompactionResult } from "./levels/compaction.ts";
import {
  type CompactionJob,
  type CompactionTuning,
  DEFAULT_COMPACTION_TUNING,
  pickCompaction,
  type WriteStall,
  writeStall,
} from "./levels/compaction-picker.ts";
import { DEFAULT_GUARD_TUNING, type GuardTuning } from "./levels/guards.ts";
import type { LevelChange, LevelSet } from "./levels/level-set.ts";
import type { TableMeta } from "./levels/table-meta.ts";
import { WriteAmplification } from "./levels/write-amplification.ts";
import { editOf, levelSetOf } from "./levels-manifest.ts";
import { Manifest, type ManifestOptions } from "./manifest/manifest.ts";
import type { Memtable } from "./memtable.ts";
import { BlockCache } from "./table/block-cache.ts";
import type { TableReader } from "./table/reader.ts";
import type { TableOptions } from "./table/writer.ts";
import { writeTableFile } from "./table-file-writer.ts";
import { TablePins } from "./table-pins.ts";
import { type Backlog, WriteGate, type WriteGateStats } from "./write-gate.ts";

export const BLOCK_CACHE_BYTES_DEFAULT = 256 * 1024 * 1024;
/** Frozen memtables waiting for their flush at which writes stop (LevelDB's one memtable and one immutable, then a wait). */
export const FROZEN_MEMTABLES_STOP = 2;
/**
 * Memtables held at most: the one taking writes and those waiting for their flush. `memtableBytes`
 * is their budget together (as RocksDB's db_write_buffer_size), each frozen at its share, so that
 * what the memtables hold is what `--memtable-bytes` says: the engine's memory bound counts it once.
 */
export const MEMTABLES_MAX = FROZEN_MEMTABLES_STOP + 1;
/** The pause before a failed compaction is tried again. */
export const COMPACTION_RETRY_MS = 1_000;

/**
 * The log whose records the tables take over (the WAL): made durable up to a flush's revision before
 * the manifest says that revision is in tables, and cut once it is.
 */
export interface FlushedLog {
  /** Makes every record written so far durable. */
  syncWritten(): Promise<void>;
  /** Deletes what holds only records at or below `revision`. */
  dropCovered(revision: number): Promise<void>;
}

/** What a compaction runner is given: the job, where it was picked, and how to name its tables. */
export interface CompactionRequest {
  readonly job: CompactionJob;
  /** The level set the job was picked from (its guards decide the output's split). */
  readonly levels: LevelSet;
  /**
   * The GC floor when the compaction starts (docs/internals/flsm.md: safe for its whole run), at
   * most the manifest's compacted revision: the oldest revision readable after a crash.
   */
  readonly floor: number;
  /** The engine's directory: inputs are `<number>.sst` there, and so are the outputs. */
  readonly dir: string;
  /** A number for each output table (the manifest's). */
  allocateFileNumber(): number;
}

/**
 * Runs a compaction (src/storage/flsm/compaction/, in a Worker): writes the output tables, each
 * synced with its directory entry, and resolves with what changed. Installing it (the manifest edit,
 * the level set, deleting the inputs) is the engine's. A failed run removes its outputs.
 */
export type CompactHook = (request: CompactionRequest) => Promise<CompactionResult>;

/** A frozen memtable's table to write: its entries in internal-key order, at least one. */
export interface TableToWrite {
  readonly dir: string;
  readonly path: string;
  readonly number: number;
  readonly options: Partial<TableOptions>;
  readonly entries: Iterable<Entry>;
}

/**
 * Writes a flush's table, synced with its directory entry, and resolves with what the levels know
 * of it; a failure leaves no file (or an orphan the next start deletes). In process by default
 * (table-file-writer.ts); a server writes it in a Worker (flush/worker-flushes.ts).
 */
export type WriteTableHook = (table: TableToWrite) => Promise<TableMeta>;

export interface FlsmEngineOptions {
  fs: FileSystem;
  /** The engine's directory (a data directory's `flsm/`): CURRENT, MANIFEST-<n>, <number>.sst. */
  dir: string;
  /** The memtables' budget together (MEMTABLES_MAX of them, each frozen at its share). */
  memtableBytes?: number;
  blockCacheBytes?: number;
  /** The options of the store (history, observers). */
  storeOptions: StoreOptions;
  /** Failed flushes and compactions, and other lines for the operator. */
  report?: (line: string) => void;
  /**
   * The log the memtables replay from. Awaited by the first flush: the WAL opens after the replay,
   * which may flush already. Without one, flushes sync and cut nothing (tests of the engine alone).
   */
  log?: Promise<FlushedLog>;
  /** Where compactions run; without it none runs (level 0 grows, and `stats` shows the stall). */
  compact?: CompactHook;
  /** Where flushes write their tables; in process (through `fs`) without it. */
  writeTable?: WriteTableHook;
  /** Sizes of tables, guards, picker and manifest (tests shrink them to reach every path). */
  tuning?: {
    table?: Partial<TableOptions>;
    guards?: GuardTuning;
    compaction?: CompactionTuning;
    manifest?: ManifestOptions;
  };
}

/** The engine's own figures, beside the store's (metrics). */
export interface FlsmEngineStats {
  /** Per level: its tables now, and the table bytes flushes or compactions wrote into it since the start. */
  levels: { level: number; tables: number; bytes: number; guards: number; bytesWritten: number }[];
  memtable: MemtableStats;
  flushes: number;
  flushFailures: number;
  flushBytes: number;
  flushMs: number;
  compactions: number;
  /** Whether a compaction is running now. */
  compacting: boolean;
  compactionFailures: number;
  compactionBytesRead: number;
  compactionBytesWritten: number;
  /** Table bytes written per user byte (flushes and compactions). */
  writeAmplification: number;
  /** `roomBytes`: what blocks may take, the capacity less the tables' indexes and filters (tableMemoryBytes). */
  blockCache: { hits: number; misses: number; bytes: number; capacityBytes: number; roomBytes: number };
  /** What the open tables hold in memory beside the block cache: their block indexes and Bloom filters. */
  tableMemoryBytes: number;
  /** Level 0's state (docs/internals/flsm.md); the memtables' backlog stops writes too (`backlog`). */
  writeStall: WriteStall;
  /** What writes are asked to do now, and how many waited. */
  backlog: Backlog;
  writeGate: WriteGateStats;
  flushedRevision: number;
  manifest: { number: number; logBytes: number; rewrites: number };
}

/** A store kept in memtables and tables on disk (docs/internals/flsm.md), as a database opens it. */
export interface FlsmEngine {
  readonly store: FlsmStore;
  /** Every command at or below it is in tables: the log is replayed after it. */
  readonly flushedRevision: number;
  readonly compactedRevision: number;
  stats(): FlsmEngineStats;
  /**
   * Asked by the WAL before it logs each group of writes: undefined when it may go now, otherwise
   * settles when it may, or rejects when it may not (closing; stopped by a failed flush or
   * compaction, E_DISK). Bounds the frozen memtables and level 0 under a load the disk cannot keep
   * up with.
   */
  admitWrite(): Promise<void> | undefined;
  /**
   * Flushes every memtable (then every command applied so far is in tables), then writes into
   * `into`, a new directory, the tables as the manifest names them, each a hard link, and a manifest
   * of its own (backup-tables.ts): a complete engine directory. Flushes and compactions go on.
   */
  backup(into: string): Promise<BackupContents>;
  /** Refuses the writes a backlog holds, those waiting and from now on (the database is closing). */
  refuseWrites(): void;
  /** Waits for the flush and compaction under way, then closes the tables and the manifest. */
  close(): Promise<void>;
}

/**
 * Opens (or creates) the engine in `dir`: the manifest, then deletes the orphan tables (written by
 * a flush or compaction whose edit never became durable; before any new table is written, since their
 * numbers may be handed out again), opens every table through one block cache, and starts the
 * store at the flushed revision, reporting the TTLs its tables still hold to onExpiry. The caller
 * replays its log after `flushedRevision`.
 */
export async function openFlsmEngine(options: FlsmEngineOptions): Promise<FlsmEngine> {
  const { fs, dir } = options;
  const tuning = options.tuning ?? {};
  const manifest = await Manifest.open(fs, dir, tuning.manifest);
  try {
    const live = new Set(manifest.liveFiles());
    for (const name of await fs.list(dir)) {
      const number = parseTableFileName(name);
      if (number !== undefined && !live.has(number)) await fs.remove(`${dir}/${name}`);
    }
    const guards = tuning.guards ?? DEFAULT_GUARD_TUNING;
    const cache = new BlockCache(options.blockCacheBytes ?? BLOCK_CACHE_BYTES_DEFAULT);
    const levels = await DiskLevels.open(fs, dir, levelSetOf(manifest.state, guards.levelCount), cache);
    return new DiskEngine(options, manifest, levels);
  } catch (error) {
    await manifest.close().catch(() => {});
    throw error;
  }
}

class DiskEngine implements FlsmEngine {
  readonly store: FlsmStore;
  readonly flushedRevision: number;
  readonly compactedRevision: number;
  private readonly fs: FileSystem;
  private readonly dir: string;
  private readonly report: (line: string) => void;
  private readonly amplification = new WriteAmplification();
  private readonly counters = { flushFailures: 0, flushMs: 0, compactionFailures: 0 };
  private flushing: Promise<unknown> = Promise.resolve();
  private compacting: Promise<void> | undefined;
  private compactionFailure: string | undefined;
  private cancelCompactionRetry: (() => void) | undefined;
  private readonly gate: WriteGate;
  private readonly writeTable: WriteTableHook;
  /** Tables a backup is linking: a compaction's inputs among them are deleted once it is done. */
  private readonly pins: TablePins;
  private closed = false;

  constructor(
    private readonly options: FlsmEngineOptions,
    private readonly manifest: Manifest,
    private readonly levels: DiskLevels,
  ) {
    this.fs = options.fs;
    this.dir = options.dir;
    this.report = options.report ?? ((line) => console.warn(line));
    this.gate = new WriteGate(() => this.backlog());
    // A leftover is an orphan the next start deletes.
    this.pins = new TablePins((number) => this.fs.remove(`${this.dir}/${tableFileName(number)}`).catch(() => {}));
    this.writeTable =
      options.writeTable ??
      ((table) => writeTableFile(options.fs, table.dir, table.path, table.number, table.entries, table.options));
    const { flushedRevision, compactedRevision, liveTotals } = manifest.state;
    this.flushedRevision = flushedRevision;
    this.compactedRevision = compactedRevision;
    this.store = createFlsmStore({
      ...options.storeOptions,
      memtableBytes: (options.memtableBytes ?? MEMTABLE_BYTES_DEFAULT) / MEMTABLES_MAX,
      levels,
      flush: (memtable, at) => {
        const flushed = this.flush(memtable, at);
        this.flushing = flushed.catch(() => {});
        return flushed;
      },
      report: this.report,
      flushSettled: () => this.gate.changed(),
      start: { revision: flushedRevision, compactedRevision, ...liveTotals },
    });
    const all = levels.levels;
    for (let level = 0; level < all.levelCount; level++)
      for (const table of all.tables(level)) this.store.reportExpiries(levels.reader(table.number).expiring());
    // Compactions otherwise start only after a flush: a level 0 left at its stop trigger (its
    // compactions failed, or the process stopped first) would stop every write, and so every flush.
    this.scheduleCompaction();
  }

  stats(): FlsmEngineStats {
    const { cache } = this.levels;
    const amplification = this.amplification;
    const memtable = this.store.memtableStats();
    const tableBytes = amplification.flushBytes + amplification.compactionBytesWritten;
    return {
      levels: this.levels.levels
        .stats()
        .map((level) => ({ ...level, bytesWritten: amplification.writtenByLevel[level.level] ?? 0 })),
      memtable,
      flushes: memtable.flushes,
      flushFailures: this.counters.flushFailures,
      flushBytes: amplification.flushBytes,
      flushMs: this.counters.flushMs,
      compactions: amplification.compactions,
      compacting: this.compacting !== undefined,
      compactionFailures: this.counters.compactionFailures,
      compactionBytesRead: amplification.compactionBytesRead,
      compactionBytesWritten: amplification.compactionBytesWritten,
      // The store counts the user's bytes (its writes), the engine the tables'.
      writeAmplification: memtable.userBytes === 0 ? 0 : tableBytes / memtable.userBytes,
      blockCache: {
        hits: cache.hits,
        misses: cache.misses,
        bytes: cache.bytes,
        capacityBytes: cache.capacityBytes,
        roomBytes: cache.roomBytes,
      },
      tableMemoryBytes: this.levels.memoryBytes,
      writeStall: writeStall(this.levels.levels, this.compactionTuning),
      backlog: this.backlog(),
      writeGate: this.gate.stats(),
      flushedRevision: this.manifest.state.flushedRevision,
      manifest: {
        number: this.manifest.number,
        logBytes: this.manifest.logBytes,
        rewrites: this.manifest.stats.rewrites,
      },
    };
  }

  admitWrite(): Promise<void> | undefined {
    return this.gate.admit();
  }

  async backup(into: string): Promise<BackupContents> {
    await this.store.flushAll();
    return backupTables({ fs: this.fs, dir: this.dir, into, manifest: this.manifest, pins: this.pins });
  }

  refuseWrites(): void {
    this.gate.close(new HomeKvError("E_UNAVAILABLE", STORE_CLOSED_MESSAGE));
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    this.refuseWrites();
    this.store.stopFlushes();
    this.cancelCompactionRetry?.();
    await this.flushing;
    await this.compacting;
    await this.manifest.close().catch(() => {});
    this.levels.close();
  }

  /**
   * Writes stop while FROZEN_MEMTABLES_STOP memtables wait for their flush (the memory they hold is
   * bounded), or level 0 is at its stop trigger; they slow down at its slowdown trigger. Level 0
   * stalls only an engine that compacts (without a compact hook nothing would ever end them).
   */
  private backlog(): Backlog {
    const { frozen, flushFailure } = this.store.memtableStats();
    const level0 = this.options.compact === undefined ? "none" : writeStall(this.levels.levels, this.compactionTuning);
    if (frozen >= FROZEN_MEMTABLES_STOP) return stop(flushFailure);
    if (level0 === "stop") return stop(this.compactionFailure);
    return level0 === "slowdown" ? { stall: "slowdown" } : { stall: "none" };
  }

  private get compactionTuning(): CompactionTuning {
    return this.options.tuning?.compaction ?? DEFAULT_COMPACTION_TUNING;
  }

  /**
   * A frozen memtable → table `<n>.sst` at level 0 (written, synced, its directory synced) → the
   * log synced through the memtable's revision → the manifest's edit (the table, the flushed and
   * compacted revisions, the live totals) → the new level set installed. Until then the store reads
   * the memtable; after a failure no table is named anywhere and its file is deleted, unless the
   * manifest cannot tell whether its edit reached the disk (the next start decides then).
   */
  private async flush(memtable: Memtable, at: FlushPoint): Promise<void> {
    if (this.closed) throw new HomeKvError("E_UNAVAILABLE", "the FLSM engine is closed");
    const started = performance.now();
    const { fs, dir, manifest } = this;
    let written: { table: TableMeta; path: string; reader: TableReader; change: LevelChange } | undefined;
    try {
      // A memtable whose versions GC dropped entirely still moves the flushed revision on.
      if (memtable.entryCount > 0) {
        const number = manifest.allocateFileNumber();
        const path = `${dir}/${tableFileName(number)}`;
        const table = await this.writeTable({
          dir,
          path,
          number,
          options: this.options.tuning?.table ?? {},
          entries: memtable.entries({}),
        });
        const reader = await openTable(fs, dir, number, this.levels.cache).catch(async (error: unknown) => {
          await fs.remove(path).catch(() => {});
          throw error;
        });
        written = {
          table,
          path,
          reader,
          change: { removed: [], guardsAdded: [], added: [{ level: 0, guard: null, table }] },
        };
      }
      await (await this.options.log)?.syncWritten();
      await manifest.log([
        ...(written ? editOf(written.change) : []),
        { kind: "flushed-revision", revision: at.revision },
        { kind: "compacted-revision", revision: at.compactedRevision },
        { kind: "live-totals", keys: at.keys, valueBytes: at.valueBytes },
      ]);
    } catch (error) {
      this.counters.flushFailures++;
      if (written) {
        written.reader.close();
        if (manifest.acceptsEdits) await fs.remove(written.path).catch(() => {});
      }
      throw error;
    }
    if (written) {
      this.levels.install(written.change, new Map([[written.table.number, written.reader]]));
      this.amplification.recordFlush(written.table.sizeBytes);
    }
    this.counters.flushMs += performance.now() - started;
    this.afterFlush(at.revision);
  }

  /** The log's records up to `revision` are in tables now: its covered part goes; then compactions. */
  private afterFlush(revision: number): void {
    this.options.log
      ?.then((log) => log.dropCovered(revision))
      .catch((error: unknown) =>
        this.report(`the WAL up to revision ${revision} could not be cut: ${describeError(error)}`),
      );
    this.scheduleCompaction();
  }

  /** Starts the most urgent compaction, unless one runs (one at a time: each is installed against the set it was picked from). */
  private scheduleCompaction(): void {
    const { compact } = this.options;
    if (compact === undefined || this.compacting !== undefined || this.closed) return;
    this.cancelCompactionRetry?.();
    this.cancelCompactionRetry = undefined;
    const job = pickCompaction(this.levels.levels, this.compactionTuning);
    if (job === undefined) return;
    this.compacting = this.compactOnce(compact, job).then(
      () => {
        this.compacting = undefined;
        this.compactionFailure = undefined;
        this.gate.changed();
        this.scheduleCompaction();
      },
      (error: unknown) => {
        this.compacting = undefined;
        this.counters.compactionFailures++;
        this.compactionFailure = describeError(error);
        this.gate.changed();
        if (this.closed) return;
        this.report(`compaction of level ${job.sourceLevel} failed, retrying in a second: ${this.compactionFailure}`);
        this.cancelCompactionRetry = realTimers.after(COMPACTION_RETRY_MS, () => {
          this.cancelCompactionRetry = undefined;
          this.scheduleCompaction();
        });
      },
    );
  }

  /** Runs `job`, then logs its change, installs it and deletes its inputs. */
  private async compactOnce(compact: CompactHook, job: CompactionJob): Promise<void> {
    const { fs, dir, manifest } = this;
    const result = await compact({
      job,
      levels: this.levels.levels,
      // Outputs outlive a crash, and a start reads from the manifest's compacted revision on: the
      // store's own may come from a Compact (or history) the log has applied but not synced yet.
      floor: Math.min(this.store.stats().gcFloor, manifest.state.compactedRevision),
      dir,
      allocateFileNumber: () => manifest.allocateFileNumber(),
    });
    const outputs = result.change.added.map(({ table }) => table.number);
    const opened = new Map<number, TableReader>();
    try {
      for (const number of outputs) opened.set(number, await openTable(fs, dir, number, this.levels.cache));
      await manifest.log(editOf(result.change));
    } catch (error) {
      for (const reader of opened.values()) reader.close();
      if (manifest.acceptsEdits)
        for (const number of outputs) await fs.remove(`${dir}/${tableFileName(number)}`).catch(() => {});
      throw error;
    }
    this.levels.install(result.change, opened);
    this.amplification.recordCompaction(result, job.targetLevel);
    // The inputs are named nowhere now, but a backup may still be linking them (table-pins.ts).
    for (const { number } of result.change.removed) await this.pins.delete(number);
  }
}

function stop(failure: string | undefined): Backlog {
  return failure === undefined ? { stall: "stop" } : { stall: "stop", failure };
}

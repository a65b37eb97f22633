import type { FileSystem } from "../io/fs/file-system.ts";
import { realFileSystem } from "../io/fs/real-fs.ts";
import { writeBackupCheckpoint } from "./backup/backup-checkpoint.ts";
import { createBackups } from "./backup/backup-dir.ts";
import { listCheckpoints, loadNewestCheckpoint } from "./checkpoint/checkpoint-reader.ts";
import { writeCheckpoint } from "./checkpoint/checkpoint-writer.ts";
import { claimDataDirEngine } from "./data-dir-engine.ts";
import { type DataDirLock, lockDataDir, processIsAlive } from "./data-dir-lock.ts";
import {
  assembleDatabase,
  type CheckpointInfo,
  createObservedStore,
  createStoreObservers,
  type Database,
  type ObservedStore,
  type StoreSettings,
} from "./database.ts";
import { MAX_TABLE_BYTES_DEFAULT, workerCompactions } from "./flsm/compaction/worker-compactions.ts";
import { type FlsmEngine, openFlsmEngine } from "./flsm/disk-engine.ts";
import { WorkerFlushes } from "./flsm/flush/worker-flushes.ts";
import { DEFAULT_GUARD_TUNING } from "./flsm/levels/guards.ts";
import type { CommitLog } from "./log/commit-log.ts";
import type { MvccStore } from "./mvcc/store-types.ts";
import type { ApplyResult } from "./ops.ts";
import { replayWal, type WalReplay } from "./wal/wal-reader.ts";
import { type FsyncMode, openWal, type Wal } from "./wal/wal-writer.ts";

export interface DurableOptions extends StoreSettings {
  dir: string;
  fsync?: FsyncMode;
  walSegmentBytesMax?: number;
  /** A checkpoint starts in the background once this many WAL bytes were written since the last. */
  checkpointWalBytes?: number;
  /** Writes waiting for the disk before new ones are refused. */
  walPendingMax?: number;
  fs?: FileSystem;
  /** Recovery and checkpoint lines for the operator. */
  log?: (line: string) => void;
  /** Who holds the lock, and how to tell whether a holder still runs (injectable for tests). */
  pid?: number;
  isAlive?: (pid: number) => boolean;
}

export const DURABLE_DEFAULTS = {
  fsync: "always" as FsyncMode,
  walSegmentBytesMax: 64 * 1024 * 1024,
  checkpointWalBytes: 256 * 1024 * 1024,
  walPendingMax: 100_000,
};

const CHECKPOINT_SLICE_KEYS = 4_096;
const WAL_GROUP_ENTRIES_MAX = 4_096;

/**
 * Opens (or creates) a store kept in `dir`: locks the directory, loads the newest checkpoint,
 * replays the WAL after it, then serves with the WAL as its log.
 *
 *   dir/LOCK                    pid of the server using it
 *   dir/ENGINE                  the engine that writes it (data-dir-engine.ts)
 *   dir/wal/<rev>.wal           WAL segments (src/storage/wal/wal-format.ts)
 *   dir/checkpoints/<rev>.ckpt  checkpoints (src/storage/checkpoint/checkpoint-format.ts)
 *   dir/flsm/                   the FLSM engine's manifest and tables, in its place (flsm/disk-engine.ts)
 *
 * With the FLSM engine the tables take the place of checkpoints: the store starts from them at the
 * manifest's flushed revision, the WAL is replayed after it, and each flush cuts the WAL it covers.
 */
export async function openDurableDatabase(options: DurableOptions): Promise<Database> {
  const fs = options.fs ?? realFileSystem;
  const log = options.log ?? (() => {});
  const walDir = `${options.dir}/wal`;
  const checkpointDir = `${options.dir}/checkpoints`;
  const started = performance.now();

  await fs.mkdirp(options.dir);
  const lock = await lockDataDir({
    fs,
    dir: options.dir,
    pid: options.pid ?? process.pid,
    isAlive: options.isAlive ?? processIsAlive,
  });
  try {
    await claimDataDirEngine(fs, options.dir, options.engine?.kind ?? "memory");
    await fs.mkdirp(walDir);
    await fs.mkdirp(checkpointDir);
    await removeUnfinishedCheckpoints(fs, checkpointDir);

    const engine = options.engine;
    // The FLSM engine's first flush may come during the replay; it waits for the WAL to sync and cut it.
    const walOpened = Promise.withResolvers<Wal<ApplyResult>>();
    walOpened.promise.catch(() => {});
    const flsm = engine?.kind === "flsm" ? await openFlsmDisk(fs, options, walOpened.promise, log) : undefined;
    const { store, expiry, watchHub } = flsm ?? createObservedStore(options, log);
    const checkpoint = flsm
      ? undefined
      : await loadNewestCheckpoint(fs, checkpointDir, (loaded) =>
          store.restore(loaded.revision, loaded.compactedRevision, loaded.chains),
        );
    // The FLSM engine admits each group of writes (its write stall); the memory engine has no backlog.
    const admit = flsm && (() => flsm.engine.admitWrite());
    const { replay, wal } = await replayAndOpenWal(fs, walDir, options, store, log, admit).catch(
      async (error: unknown) => {
        walOpened.reject(error);
        await flsm?.engine.close();
        await flsm?.closeWorkers();
        throw error;
      },
    );
    walOpened.resolve(wal);
    const recoveryMs = performance.now() - started;
    const base = flsm
      ? `tables up to revision ${flsm.engine.flushedRevision}`
      : `checkpoint ${checkpoint?.revision ?? "none"}`;
    log(
      `recovered revision ${store.revision} (${store.stats().keys} keys) in ${recoveryMs.toFixed(0)} ms: ` +
        `${base}, ${replay.lastRevision - (flsm?.engine.flushedRevision ?? checkpoint?.revision ?? 0)} WAL records replayed`,
    );
    if (flsm)
      return assembleFlsmDatabase({
        ...flsm,
        fs,
        dir: options.dir,
        wal,
        recoveryMs,
        lock,
        log,
        gcSliceKeysMax: options.gcSliceKeysMax,
      });

    let last: CheckpointInfo | undefined;
    let running: Promise<CheckpointInfo> | undefined;
    let appendedAtLast = 0;
    const checkpointWalBytes = options.checkpointWalBytes ?? DURABLE_DEFAULTS.checkpointWalBytes;

    const runCheckpoint = async (): Promise<CheckpointInfo> => {
      const begun = performance.now();
      appendedAtLast = wal.stats().appendedBytes;
      const written = await writeCheckpoint({
        fs,
        dir: checkpointDir,
        store,
        sliceKeysMax: CHECKPOINT_SLICE_KEYS,
        // Under everysec/never the WAL may hold applied records not yet synced. A checkpoint must
        // never be durable ahead of the log: after a crash the log would resume at the checkpoint's
        // revision right after its last synced record, leaving a gap the next start refuses.
        beforeRename: () => wal.syncWritten(),
      });
      await wal.dropCovered(written.revision);
      for (const older of (await listCheckpoints(fs, checkpointDir)).slice(1))
        await fs.remove(`${checkpointDir}/${older.name}`);
      last = {
        revision: written.revision,
        entries: written.entries,
        bytes: written.bytes,
        atMs: Date.now(),
        durationMs: performance.now() - begun,
      };
      log(
        `checkpoint at revision ${written.revision}: ${written.entries} keys, ${written.bytes} bytes in ${last.durationMs.toFixed(0)} ms`,
      );
      return last;
    };
    /** One checkpoint at a time; a request during one waits for it, then takes a fresh one. */
    const checkpointNow = async (): Promise<CheckpointInfo> => {
      while (running) await running.catch(() => {});
      running = runCheckpoint().finally(() => {
        running = undefined;
      });
      return running;
    };

    // A backup is a checkpoint written into a new data directory (backup/backup-dir.ts).
    const backups = createBackups({
      fs,
      dataDir: options.dir,
      engine: "memory",
      log,
      write: (into) =>
        writeBackupCheckpoint({
          fs,
          into,
          store,
          sliceKeysMax: CHECKPOINT_SLICE_KEYS,
          // Nothing in a backup that this server could still lose in a crash (fsync everysec/never).
          beforeRename: () => wal.syncWritten(),
        }),
    });

    return assembleDatabase({
      store,
      expiry,
      watchHub,
      log: wal,
      gcSliceKeysMax: options.gcSliceKeysMax,
      walStats: () => wal.stats(),
      checkpoint: checkpointNow,
      lastCheckpoint: () => last,
      backup: (dir) => backups.backup(dir),
      recoveryMs,
      afterWrite() {
        if (running || wal.stats().appendedBytes - appendedAtLast < checkpointWalBytes) return;
        checkpointNow().catch((error) =>
          log(`background checkpoint failed: ${error instanceof Error ? error.message : error}`),
        );
      },
      async onClose() {
        try {
          await backups.settled();
          // A clean shutdown leaves a checkpoint at the last revision: the next start replays nothing.
          if (store.revision > (last?.revision ?? checkpoint?.revision ?? 0)) await checkpointNow();
        } finally {
          await lock.release();
        }
      },
    });
  } catch (error) {
    await lock.release();
    throw error;
  }
}

/** Replays the WAL after the store's revision into it, then opens it to take the next writes. */
async function replayAndOpenWal(
  fs: FileSystem,
  walDir: string,
  options: DurableOptions,
  store: MvccStore,
  log: (line: string) => void,
  admit?: () => Promise<void> | undefined,
): Promise<{ replay: WalReplay; wal: Wal<ApplyResult> }> {
  const replay = await replayWal({
    fs,
    dir: walDir,
    afterRevision: store.revision,
    apply: (entry) => store.apply(entry),
  });
  if (replay.tornBytes > 0) {
    log(`cut ${replay.tornBytes} bytes of an interrupted write from the end of the WAL (never acknowledged)`);
  }
  const wal = await openWal({
    fs,
    dir: walDir,
    segments: replay.segments,
    lastRevision: replay.lastRevision,
    fsync: options.fsync ?? DURABLE_DEFAULTS.fsync,
    segmentBytesMax: options.walSegmentBytesMax ?? DURABLE_DEFAULTS.walSegmentBytesMax,
    pendingMax: options.walPendingMax ?? DURABLE_DEFAULTS.walPendingMax,
    groupEntriesMax: WAL_GROUP_ENTRIES_MAX,
    apply: (entry) => store.apply(entry),
    ...(admit === undefined ? {} : { admit }),
  });
  return { replay, wal };
}

async function removeUnfinishedCheckpoints(fs: FileSystem, dir: string): Promise<void> {
  for (const name of await fs.list(dir)) if (name.endsWith(".tmp")) await fs.remove(`${dir}/${name}`);
}

/** The FLSM engine in `dir/flsm`, with the observers a database gives its store. */
async function openFlsmDisk(
  fs: FileSystem,
  options: DurableOptions,
  wal: Promise<Wal<ApplyResult>>,
  log: (line: string) => void,
): Promise<ObservedStore & { engine: FlsmEngine; closeWorkers(): Promise<void> }> {
  const settings = options.engine?.kind === "flsm" ? options.engine : { kind: "flsm" as const };
  // The compression setting is one of the tables' options (a test's own table options win).
  const tuning = {
    ...settings.tuning,
    table: { ...(settings.compression && { compression: settings.compression }), ...settings.tuning?.table },
  };
  const { expiry, watchHub } = createStoreObservers(options, log);
  // Flushes and compactions in Workers on the real file system (unless the caller runs compactions);
  // a Worker cannot share another one (the fault-injecting one of the tests): there, in process.
  const onRealFiles = fs === realFileSystem;
  const workers =
    settings.compact === undefined && onRealFiles
      ? workerCompactions({
          maxTableBytes: MAX_TABLE_BYTES_DEFAULT,
          guards: settings.tuning?.guards ?? DEFAULT_GUARD_TUNING,
          table: tuning.table,
        })
      : undefined;
  const flushes = onRealFiles ? new WorkerFlushes() : undefined;
  const closeWorkers = async () => {
    await workers?.close();
    await flushes?.close();
  };
  const engine = await openFlsmEngine({
    fs,
    dir: `${options.dir}/flsm`,
    memtableBytes: settings.memtableBytes,
    blockCacheBytes: settings.blockCacheBytes,
    compact: settings.compact ?? workers?.compact,
    writeTable: flushes?.writeTable,
    tuning,
    storeOptions: expiry.storeOptions,
    report: log,
    log: wal,
  }).catch(async (error: unknown) => {
    await closeWorkers();
    throw error;
  });
  return { store: engine.store, expiry, watchHub, engine, closeWorkers };
}

/**
 * The database over the FLSM engine: a checkpoint flushes the memtables (everything applied is
 * then in tables, and the WAL before it is cut); closing waits for the engine's flush.
 */
function assembleFlsmDatabase(
  parts: ObservedStore & {
    engine: FlsmEngine;
    closeWorkers(): Promise<void>;
    fs: FileSystem;
    /** The data directory. */
    dir: string;
    wal: Wal<ApplyResult>;
    recoveryMs: number;
    lock: DataDirLock;
    log: (line: string) => void;
    gcSliceKeysMax?: number;
  },
): Database {
  const { store, engine, wal, lock, log } = parts;
  let last: CheckpointInfo | undefined;
  const checkpointNow = async (): Promise<CheckpointInfo> => {
    const begun = performance.now();
    const revision = store.revision;
    await engine.store.flushAll();
    const { levels } = engine.stats();
    last = {
      revision,
      entries: store.stats().keys,
      bytes: levels.reduce((sum, level) => sum + level.bytes, 0),
      atMs: Date.now(),
      durationMs: performance.now() - begun,
    };
    log(
      `checkpoint at revision ${revision}: ${last.entries} keys, ${last.bytes} bytes of tables in ${last.durationMs.toFixed(0)} ms`,
    );
    return last;
  };
  // A backup is the engine's tables, linked, under a manifest of their own (flsm/backup-tables.ts).
  const backups = createBackups({
    fs: parts.fs,
    dataDir: parts.dir,
    engine: "flsm",
    log,
    write: (into) => engine.backup(`${into}/flsm`),
  });
  // The WAL asks the engine before each group (replayAndOpenWal); a close refuses the writes
  // waiting there first, or the WAL's close would wait for a stop that nothing ends any more.
  const admitted: CommitLog<ApplyResult> = {
    propose: (command, requestId) => wal.propose(command, requestId),
    close() {
      engine.refuseWrites();
      return wal.close();
    },
  };
  return assembleDatabase({
    ...parts,
    log: admitted,
    walStats: () => wal.stats(),
    engineStats: () => engine.stats(),
    checkpoint: checkpointNow,
    lastCheckpoint: () => last,
    backup: (dir) => backups.backup(dir),
    async onClose() {
      try {
        try {
          await backups.settled();
          // A clean stop leaves everything in tables, as the memory engine leaves a checkpoint: the
          // next start replays nothing.
          if (store.revision > engine.stats().flushedRevision) await checkpointNow();
        } finally {
          // Even when that flush failed (the WAL keeps its records): an engine left open would retry
          // it every second, writing tables and the manifest after the lock is released.
          await engine.close();
          await parts.closeWorkers();
        }
      } finally {
        await lock.release();
      }
    },
  });
}

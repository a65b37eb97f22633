import { HomeKvError, STORE_CLOSED_MESSAGE } from "../../errors.ts";
import { diskError } from "../../io/fs/disk-error.ts";
import type { AppendFile, FileSystem } from "../../io/fs/file-system.ts";
import type { ApplyFn, CommitLog } from "../log/commit-log.ts";
import type { Command, LogEntry } from "../ops.ts";
import { encodeRecords, WAL_SEGMENTS } from "./wal-format.ts";
import type { SegmentInfo } from "./wal-reader.ts";

/** When a write is acknowledged, like Redis's appendfsync. */
export type FsyncMode = "always" | "everysec" | "never";
export const FSYNC_MODES: readonly FsyncMode[] = ["always", "everysec", "never"];

export interface WalOptions<R> {
  fs: FileSystem;
  dir: string;
  /** What replay found: the segments on disk and the last revision in them (or in the checkpoint). */
  segments: readonly SegmentInfo[];
  lastRevision: number;
  fsync: FsyncMode;
  segmentBytesMax: number;
  /** Batches waiting for the disk; one more is refused (back-pressure, never unbounded memory). */
  pendingMax: number;
  /** Batches one write+sync may carry; keeps each encode step bounded. */
  groupEntriesMax: number;
  apply: ApplyFn<R>;
  /**
   * Asked before each group is taken from the queue (the FLSM engine's write stall, as LevelDB's
   * writer makes room before each group): undefined to go on, or a promise the group waits for —
   * the queue meanwhile bounded by `pendingMax` — that rejects when it must be refused instead.
   */
  admit?: () => Promise<void> | undefined;
  /** For `everysec`: how to run the periodic sync (a timer in the server; injectable in tests). */
  everySecond?: (tick: () => void) => () => void;
}

export interface WalStats {
  bytes: number;
  segments: number;
  fsyncs: number;
  /** Batches made durable; entries / fsyncs is the average group size. */
  entries: number;
  /** Bytes appended since start (the checkpoint trigger compares against it). */
  appendedBytes: number;
}

export interface Wal<R> extends CommitLog<R> {
  readonly lastRevision: number;
  stats(): WalStats;
  /** Makes every record written so far durable, whatever the fsync mode. */
  syncWritten(): Promise<void>;
  /** Deletes the segments that hold only revisions ≤ `revision` (covered by a checkpoint). */
  dropCovered(revision: number): Promise<void>;
}

interface Pending<R> {
  command: Command;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

/**
 * The write-ahead log with group commit. Batches proposed while a write+fsync is in flight queue
 * up and go to disk together in the next one, so concurrent writers share fsyncs. Revisions are
 * assigned when a group is written, so a failed write leaves no hole in the revisions.
 * A batch is applied (made visible) only after its group is durable under the fsync mode.
 */
export async function openWal<R>(options: WalOptions<R>): Promise<Wal<R>> {
  const { fs, dir } = options;
  const segments = options.segments.map((s) => ({ ...s }));
  let lastRevision = options.lastRevision;
  let file: AppendFile;
  if (segments.length === 0) file = await createSegment(lastRevision + 1);
  else file = await fs.openAppend(`${dir}/${segments.at(-1)!.name}`);

  const pending: Pending<R>[] = [];
  let flushing: Promise<void> | undefined;
  let unsynced = false;
  /** Appends completed so far: a sync clears `unsynced` only if none completed while it ran. */
  let appends = 0;
  let broken: HomeKvError | undefined;
  let closed = false;
  const stats = { fsyncs: 0, entries: 0, appendedBytes: 0 };

  async function createSegment(firstRevision: number): Promise<AppendFile> {
    const name = WAL_SEGMENTS.fileName(firstRevision);
    const created = await fs.openAppend(`${dir}/${name}`);
    try {
      await created.truncate(0);
      await created.append(WAL_SEGMENTS.encodeHeader(firstRevision));
      await created.sync();
      await fs.syncDir(dir);
    } catch (error) {
      // Leave no half-made segment behind: the current one goes on taking writes, and a stray
      // empty segment after it would read as a gap in the revisions at the next start.
      await created.close().catch(() => {});
      await fs.remove(`${dir}/${name}`).catch(() => {});
      throw error;
    }
    segments.push({ name, firstRevision, bytes: created.size });
    return created;
  }

  async function sync(): Promise<void> {
    const covers = appends;
    try {
      await file.sync();
    } catch (error) {
      // After a failed fsync the kernel may have dropped the dirty pages: nothing written since
      // the last good sync can be trusted, so no further write is accepted until a restart.
      broken = diskError("the write-ahead log could not be synced; restart the server", error);
      throw broken;
    }
    if (appends === covers) unsynced = false;
    stats.fsyncs++;
  }

  async function writeGroup(group: Pending<R>[]): Promise<void> {
    if (file.size >= options.segmentBytesMax) {
      if (unsynced) await sync();
      // The new segment first: when it cannot be made (a full disk), the current one stays open
      // and the write fails like any other disk write, to be retried once there is room.
      const next = await createSegment(lastRevision + 1).catch((error: unknown) => {
        throw diskError("a new write-ahead log segment could not be created", error);
      });
      await file.close();
      file = next;
    }
    const entries: LogEntry[] = group.map((p, i) => ({ ...p.command, revision: lastRevision + 1 + i }));
    const bytes = encodeRecords(entries);
    const before = file.size;
    try {
      await file.append(bytes);
    } catch (error) {
      try {
        await file.truncate(before);
      } catch {
        broken = diskError("the write-ahead log could not be repaired after a failed write; restart the server", error);
        throw broken;
      }
      throw diskError("the write-ahead log could not be written", error);
    }
    unsynced = true;
    appends++;
    if (options.fsync === "always") await sync();
    lastRevision += entries.length;
    segments.at(-1)!.bytes = file.size;
    stats.entries += entries.length;
    stats.appendedBytes += bytes.byteLength;
    for (const [i, p] of group.entries()) {
      try {
        p.resolve(options.apply(entries[i]!));
      } catch (error) {
        p.reject(error);
      }
    }
  }

  async function flushLoop(): Promise<void> {
    while (pending.length > 0) {
      const wait = broken ? undefined : options.admit?.();
      const refused =
        wait === undefined
          ? undefined
          : await wait.then(
              () => undefined,
              (error: unknown) => error,
            );
      const group = pending.splice(0, options.groupEntriesMax);
      if (refused !== undefined) {
        for (const p of group) p.reject(refused);
        continue;
      }
      if (broken) {
        for (const p of group) p.reject(broken);
        continue;
      }
      try {
        await writeGroup(group);
      } catch (error) {
        for (const p of group) p.reject(error);
      }
    }
  }

  function kick(): void {
    flushing ??= flushLoop().finally(() => {
      flushing = undefined;
      if (pending.length > 0) kick();
    });
  }

  let cutting: Promise<void> = Promise.resolve();
  /**
   * Removes the segments holding only revisions ≤ `revision`: a segment is covered when the next
   * one starts at or before revision + 1. Oldest first, and a segment leaves the list only once its
   * file is gone: after a failed removal the next call starts from it again.
   */
  async function dropThrough(revision: number): Promise<void> {
    while (segments.length > 1 && segments[1]!.firstRevision <= revision + 1) {
      await fs.remove(`${dir}/${segments[0]!.name}`);
      segments.shift();
    }
    await fs.syncDir(dir);
  }

  /** Runs `work` between groups, never during a write. */
  async function exclusive(work: () => Promise<void>): Promise<void> {
    while (flushing) await flushing;
    await work();
  }

  const stopTimer =
    options.fsync === "everysec"
      ? (options.everySecond ?? defaultEverySecond)(() => {
          if (!unsynced || broken || closed) return;
          // Syncing a file while another append is in flight is fine: fdatasync covers what has
          // been written; anything appended later is covered by the next tick.
          sync().catch(() => {});
        })
      : () => {};

  return {
    get lastRevision() {
      return lastRevision;
    },
    propose(command) {
      if (closed) return Promise.reject(new HomeKvError("E_UNAVAILABLE", STORE_CLOSED_MESSAGE));
      if (broken) return Promise.reject(broken);
      if (pending.length >= options.pendingMax) {
        return Promise.reject(
          new HomeKvError(
            "E_UNAVAILABLE",
            `${options.pendingMax} writes are already waiting for the disk; retry later`,
          ),
        );
      }
      return new Promise<R>((resolve, reject) => {
        pending.push({ command, resolve, reject });
        kick();
      });
    },
    stats: () => ({
      bytes: segments.reduce((sum, s) => sum + s.bytes, 0),
      segments: segments.length,
      ...stats,
    }),
    async syncWritten() {
      if (broken) throw broken;
      if (unsynced) await sync();
    },
    dropCovered(revision) {
      // One cut at a time: two overlapping cuts (a flush's cut still removing when the next
      // flush's starts) would both remove the oldest segment and both shift the list, forgetting
      // the next segment while its successors go, a hole in the log on disk.
      const cut = cutting.then(() => dropThrough(revision));
      cutting = cut.catch(() => {});
      return cut;
    },
    async close() {
      if (closed) return;
      closed = true;
      stopTimer();
      await exclusive(async () => {
        if (unsynced && !broken) await sync().catch(() => {});
        await file.close();
      });
    },
  };
}

function defaultEverySecond(tick: () => void): () => void {
  const timer = setInterval(tick, 1_000);
  timer.unref();
  return () => clearInterval(timer);
}

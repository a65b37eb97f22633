import { assert, HomeKvError } from "../../errors.ts";
import { corruptionError } from "../../io/format/corruption.ts";
import type { AppendFile, FileSystem } from "../../io/fs/file-system.ts";
import {
  entriesFrame,
  hardStateFrame,
  readSnapshotFile,
  replaySegment,
  SEGMENT,
  SNAPSHOT,
  snapshotFile,
} from "./durable-log-format.ts";
import { SerialLog } from "./serial-log.ts";
import { MemoryStorage, type PersistentRaftLog } from "./storage.ts";
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";

/**
 * A Raft node's hard state, log and snapshot on disk (formats in durable-log-format.ts), read whole
 * at open and kept in memory for the core.
 *
 * - `persist(hardState, entries)` appends to the current segment and syncs before it resolves, so
 *   that the caller sends a Ready's messages only once what they promise is durable.
 * - `compact` (the application summed up the log to an applied index) and `installSnapshot` (the
 *   leader sent one) first sync the current segment, then start a new one holding the hard state,
 *   synced; then write the snapshot file atomically (temporary name, sync, rename, sync the
 *   directory), naming the first segment replay must read after it; then remove the older segments
 *   and snapshots. The entries a compaction keeps stay where they are: the first segment named is
 *   the newest one whose first entries record starts at or below the entry after the snapshot
 *   (replay skips what the snapshot covers), not a copy of them. Rewriting them made a compaction
 *   write and sync the whole tail (tens of MiB with large entries) while every persist queued
 *   behind it, long enough for a leader's followers to time out. A leader's snapshot keeps no
 *   entries: the new segment is the first. A crash between any two steps leaves the log as it was
 *   before (the old snapshot and its segments, the new segment empty) or as it is after (the new
 *   snapshot and the segments from the one it names), never a mix.
 * - One operation at a time: `persist`, `compact`, `installSnapshot` and `close` queue behind each
 *   other, so a compaction can never switch segments under a persist still writing.
 * - At open, a torn last record (a crash mid-append) is cut off with a log line; damage anywhere
 *   else stops the open, naming the file and the offset.
 */
export class DurableRaftLog extends SerialLog implements PersistentRaftLog {
  /**
   * Set when a failure left the files in a state this object can no longer extend safely (a
   * snapshot half-installed, a write that could not be cut back): every later call fails with it,
   * and reopening (a restart) recovers from the files. etcd stops the process in the same case.
   */
  private broken: Error | undefined;

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    memory: MemoryStorage,
    private file: AppendFile,
    private sequence: number,
    /** The segments from the snapshot's first on, by sequence: the index of each one's first entry, if it holds one. */
    private readonly firstEntries: Map<number, number>,
  ) {
    super(memory);
  }

  static async open(
    fs: FileSystem,
    dir: string,
    onTornTail: (line: string) => void = () => {},
  ): Promise<DurableRaftLog> {
    await fs.mkdirp(dir);
    const names = await fs.list(dir);
    const memory = new MemoryStorage();
    const snapshots = names
      .map((name) => SNAPSHOT.parseFileName(name))
      .filter((index) => index !== undefined)
      .sort((a, b) => a - b);
    const newest = snapshots.at(-1);
    let firstSegment = 0;
    if (newest !== undefined) {
      const path = `${dir}/${SNAPSHOT.fileName(newest)}`;
      const record = readSnapshotFile(await fs.readFile(path), path);
      memory.applySnapshot(record.snapshot);
      firstSegment = record.firstSegment;
    }
    // Segments before the snapshot's first are covered by it (left behind by a crash during cleanup).
    const sequences = names
      .map((name) => SEGMENT.parseFileName(name))
      .filter((seq): seq is number => seq !== undefined && seq >= firstSegment)
      .sort((a, b) => a - b);
    let goodBytes = 0;
    const firstEntries = new Map<number, number>();
    for (const [i, sequence] of sequences.entries()) {
      const path = `${dir}/${SEGMENT.fileName(sequence)}`;
      const bytes = await fs.readFile(path);
      const last = i === sequences.length - 1;
      const replayed = replaySegment(bytes, path, memory, last ? onTornTail : () => {});
      goodBytes = replayed.goodBytes;
      if (replayed.firstEntry !== undefined) firstEntries.set(sequence, replayed.firstEntry);
      // Only the last segment may end torn: the ones before it were complete when the next began.
      if (!last && goodBytes < bytes.byteLength)
        throw corruptionError(path, goodBytes, "a segment before the last one ends in a torn record");
    }
    const sequence = sequences.at(-1) ?? firstSegment;
    const file = await fs.openAppend(`${dir}/${SEGMENT.fileName(sequence)}`);
    if (goodBytes < file.size) await file.truncate(goodBytes);
    if (file.size === 0) {
      await file.append(SEGMENT.encodeHeader(sequence));
      await file.sync();
      await fs.syncDir(dir);
    }
    return new DurableRaftLog(fs, dir, memory, file, sequence, firstEntries);
  }

  /**
   * Writes a Ready's hard state and entries, and syncs them unless `sync` is false (a Ready whose
   * `mustSync` is false: only the commit index moved, which a restart learns again from the leader).
   * Only then are they visible to reads.
   */
  persist(hardState: HardState | undefined, entries: readonly Entry[], sync = true): Promise<void> {
    return this.exclusive(() => this.persistNow(hardState, entries, sync));
  }

  private async persistNow(hardState: HardState | undefined, entries: readonly Entry[], sync: boolean): Promise<void> {
    if (hardState === undefined && entries.length === 0) return;
    const frames: Uint8Array[] = [];
    if (entries.length > 0) frames.push(entriesFrame(entries));
    if (hardState) frames.push(hardStateFrame(hardState));
    const before = this.file.size;
    try {
      for (const frame of frames) await this.file.append(frame);
      if (sync) await syncOrBreak(this.file, (error) => this.breaks(error));
      if (entries.length > 0 && !this.firstEntries.has(this.sequence))
        this.firstEntries.set(this.sequence, entries[0]!.index);
    } catch (error) {
      // Nothing half-written may stay behind a later append: cut back to where this one began.
      await this.file.truncate(before).catch((cut) => this.breaks(cut));
      throw error;
    }
    this.memory.append(entries);
    if (hardState) this.memory.setHardState(hardState);
  }

  /** The application applied up to `index` and summed it up in `data`: drop the entries it covers. */
  compact(index: number, data: Uint8Array, conf: ConfState): Promise<void> {
    return this.exclusive(() =>
      this.replaceWith({ index, term: this.memory.term(index), data, conf }, this.firstSegmentAfter(index)),
    );
  }

  /** A snapshot from the leader (a Ready's) replaces the whole log. */
  installSnapshot(snapshot: Snapshot): Promise<void> {
    return this.exclusive(() => this.replaceWith(snapshot, undefined));
  }

  /**
   * The segment replay must start from after a snapshot at `index`: the newest whose first entries
   * record starts at or below `index + 1`, so that replaying it and the ones after gives the log's
   * entries after `index` as they are (each record was written to follow what the log held then).
   * Undefined when no entry follows `index` (the new segment suffices).
   */
  private firstSegmentAfter(index: number): number | undefined {
    if (index >= this.memory.lastIndex()) return undefined;
    let first: number | undefined;
    for (const [sequence, firstEntry] of this.firstEntries) if (firstEntry <= index + 1) first = sequence;
    assert(first !== undefined, () => `no segment holds the entries after ${index}`);
    return first;
  }

  close(): Promise<void> {
    return this.exclusive(() => this.file.close());
  }

  protected refusal(): Error | undefined {
    return this.broken && mustReopen(this.dir, this.broken);
  }

  private breaks(error: unknown): void {
    this.broken ??= error instanceof Error ? error : new Error(String(error));
  }

  /**
   * Starts a new segment and makes `snapshot` the log's start, with replay from segment
   * `keptFrom` (the entries after it stay where they are) or, undefined, from the new segment.
   */
  private async replaceWith(snapshot: Snapshot, keptFrom: number | undefined): Promise<void> {
    const { fs, dir } = this;
    const sequence = this.sequence + 1;
    const firstSegment = keptFrom ?? sequence;
    let file: AppendFile | undefined;
    try {
      // The current segment may end in writes not synced (a Ready that needed no sync): it must be
      // whole before another follows it, since only the last segment may end torn.
      await this.file.sync();
      // Then the new segment, complete and synced: until the snapshot names it, replay reads it
      // after the old segments, where its hard state repeats what they hold.
      file = await fs.openAppend(`${dir}/${SEGMENT.fileName(sequence)}`);
      await file.truncate(0);
      await file.append(SEGMENT.encodeHeader(sequence));
      await file.append(hardStateFrame(this.memory.hardState()));
      await file.sync();
      await fs.syncDir(dir);
      // Then the snapshot, atomically: once it is there, the log is it and the segments from the one it names on.
      const name = SNAPSHOT.fileName(snapshot.index);
      await fs.remove(`${dir}/${name}.tmp`).catch(() => {});
      await fs.createExclusive(`${dir}/${name}.tmp`, snapshotFile({ snapshot, firstSegment }));
      const written = await fs.openAppend(`${dir}/${name}.tmp`);
      await written.sync();
      await written.close();
      await fs.rename(`${dir}/${name}.tmp`, `${dir}/${name}`);
      await fs.syncDir(dir);
    } catch (error) {
      // On disk the log is as before or as after; only a reopen can tell which.
      this.breaks(error);
      await file?.close().catch(() => {});
      throw error;
    }
    const previous = this.file;
    this.file = file;
    this.sequence = sequence;
    if (keptFrom === undefined) this.memory.applySnapshot(snapshot);
    else this.memory.compact(snapshot.index, snapshot.data, snapshot.conf ?? { voters: [], learners: [] });
    for (const held of this.firstEntries.keys()) if (held < firstSegment) this.firstEntries.delete(held);
    // The files from the snapshot's first segment on hold everything: removing the older ones is
    // cleanup, retried at the next compaction.
    await previous.close().catch(() => {});
    await this.removeOlderThan(firstSegment, snapshot.index).catch(() => {});
  }

  private async removeOlderThan(sequence: number, snapshotIndex: number): Promise<void> {
    for (const name of await this.fs.list(this.dir)) {
      const oldSequence = SEGMENT.parseFileName(name);
      const oldSnapshot = SNAPSHOT.parseFileName(name);
      if (
        (oldSequence !== undefined && oldSequence < sequence) ||
        (oldSnapshot !== undefined && oldSnapshot < snapshotIndex)
      )
        await this.fs.remove(`${this.dir}/${name}`);
    }
    await this.fs.syncDir(this.dir);
  }
}

/**
 * Syncs a log's current segment; a failed sync calls `breaks` before it throws. After a failed
 * fsync the kernel may have marked the pages it could not write clean (PostgreSQL's "fsyncgate"),
 * so that a later sync succeeds without them: a record written after them would be acknowledged
 * behind a hole that stops the next open. Nothing written since the last good sync can be
 * trusted, and the log refuses calls until it is reopened (as the write-ahead log does; etcd
 * panics). A failed append (a full disk) is cut back instead, and the log goes on.
 */
export async function syncOrBreak(file: AppendFile, breaks: (error: unknown) => void): Promise<void> {
  try {
    await file.sync();
  } catch (error) {
    breaks(error);
    throw error;
  }
}

/** The error of every call to a log whose files a failure left in a state only a reopen can read. */
export function mustReopen(dir: string, failure: Error): HomeKvError {
  return new HomeKvError("E_DISK", `the Raft log in ${dir} failed earlier and must be reopened: ${failure.message}`);
}

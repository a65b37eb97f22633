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
import { MemoryStorage, type RaftStorage } from "./storage.ts";
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";

/**
 * A Raft node's hard state, log and snapshot on disk (formats in durable-log-format.ts), read whole
 * at open and kept in memory for the core.
 *
 * - `persist(hardState, entries)` appends to the current segment and syncs before it resolves, so
 *   that the caller sends a Ready's messages only once what they promise is durable.
 * - `compact` (the application summed up the log to an applied index) and `installSnapshot` (the
 *   leader sent one) write the snapshot file atomically (temporary name, sync, rename, sync the
 *   directory), then start a new segment holding the hard state and the entries after it, then
 *   remove the older segments and snapshots. A crash between any two steps leaves files that
 *   replay to the same state: the newest snapshot, then every segment in order.
 * - At open, a torn last record (a crash mid-append) is cut off with a log line; damage anywhere
 *   else stops the open, naming the file and the offset.
 */
export class DurableRaftLog implements RaftStorage {
  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly memory: MemoryStorage,
    private file: AppendFile,
    private sequence: number,
  ) {}

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
    if (newest !== undefined) {
      const path = `${dir}/${SNAPSHOT.fileName(newest)}`;
      memory.applySnapshot(readSnapshotFile(await fs.readFile(path), path));
    }
    const sequences = names
      .map((name) => SEGMENT.parseFileName(name))
      .filter((seq) => seq !== undefined)
      .sort((a, b) => a - b);
    let goodBytes = 0;
    for (const [i, sequence] of sequences.entries()) {
      const path = `${dir}/${SEGMENT.fileName(sequence)}`;
      const bytes = await fs.readFile(path);
      const last = i === sequences.length - 1;
      goodBytes = replaySegment(bytes, path, memory, last ? onTornTail : () => {});
      // Only the last segment may end torn: the ones before it were complete when the next began.
      if (!last && goodBytes < bytes.byteLength)
        throw corruptionError(path, goodBytes, "a segment before the last one ends in a torn record");
    }
    const sequence = sequences.at(-1) ?? 0;
    const file = await fs.openAppend(`${dir}/${SEGMENT.fileName(sequence)}`);
    if (goodBytes < file.size) await file.truncate(goodBytes);
    if (file.size === 0) {
      await file.append(SEGMENT.encodeHeader(sequence));
      await file.sync();
      await fs.syncDir(dir);
    }
    return new DurableRaftLog(fs, dir, memory, file, sequence);
  }

  hardState(): HardState {
    return this.memory.hardState();
  }

  snapshot(): Snapshot {
    return this.memory.snapshot();
  }

  firstIndex(): number {
    return this.memory.firstIndex();
  }

  lastIndex(): number {
    return this.memory.lastIndex();
  }

  term(index: number): number {
    return this.memory.term(index);
  }

  entries(lo: number, hi: number): Entry[] {
    return this.memory.entries(lo, hi);
  }

  /** Writes a Ready's hard state and entries and syncs them; only then are they visible to reads. */
  async persist(hardState: HardState | undefined, entries: readonly Entry[]): Promise<void> {
    if (hardState === undefined && entries.length === 0) return;
    const frames: Uint8Array[] = [];
    if (entries.length > 0) frames.push(entriesFrame(entries));
    if (hardState) frames.push(hardStateFrame(hardState));
    const before = this.file.size;
    try {
      for (const frame of frames) await this.file.append(frame);
      await this.file.sync();
    } catch (error) {
      // Nothing half-written may stay behind a later append: cut back to where this one began.
      await this.file.truncate(before).catch(() => {});
      throw error;
    }
    this.memory.append(entries);
    if (hardState) this.memory.setHardState(hardState);
  }

  /** The application applied up to `index` and summed it up in `data`: drop the entries it covers. */
  async compact(index: number, data: Uint8Array, conf: ConfState): Promise<void> {
    await this.replaceWith(
      { index, term: this.memory.term(index), data, conf },
      this.memory.entries(index + 1, this.memory.lastIndex() + 1),
    );
  }

  /** A snapshot from the leader (a Ready's) replaces the whole log. */
  async installSnapshot(snapshot: Snapshot): Promise<void> {
    await this.replaceWith(snapshot, []);
  }

  async close(): Promise<void> {
    await this.file.close();
  }

  private async replaceWith(snapshot: Snapshot, entries: readonly Entry[]): Promise<void> {
    const { fs, dir } = this;
    const name = SNAPSHOT.fileName(snapshot.index);
    await fs.remove(`${dir}/${name}.tmp`).catch(() => {});
    await fs.createExclusive(`${dir}/${name}.tmp`, snapshotFile(snapshot));
    const written = await fs.openAppend(`${dir}/${name}.tmp`);
    await written.sync();
    await written.close();
    await fs.rename(`${dir}/${name}.tmp`, `${dir}/${name}`);
    // The new segment, complete and synced before it is named; then the old files go.
    const sequence = this.sequence + 1;
    const segment = `${dir}/${SEGMENT.fileName(sequence)}`;
    const file = await fs.openAppend(segment);
    await file.append(SEGMENT.encodeHeader(sequence));
    if (entries.length > 0) await file.append(entriesFrame(entries));
    await file.append(hardStateFrame(this.memory.hardState()));
    await file.sync();
    await fs.syncDir(dir);
    const previous = this.file;
    this.file = file;
    this.sequence = sequence;
    this.memory.applySnapshot(snapshot);
    this.memory.append(entries);
    // The new files hold everything: removing the old ones is cleanup, retried at the next compaction.
    await previous.close().catch(() => {});
    await this.removeOlderThan(sequence, snapshot.index).catch(() => {});
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

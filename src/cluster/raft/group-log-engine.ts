import { assert } from "../../errors.ts";
import type { AppendFile, FileSystem } from "../../io/fs/file-system.ts";
import { syncOrBreak } from "./durable-log.ts";
import { GROUP_SEGMENT, GROUP_SNAPSHOT, snapshotDataFile } from "./group-log-format.ts";
import { replayGroupLog } from "./group-log-replay.ts";
import type { SegmentUsage } from "./group-log-segments.ts";
import { type GroupLogWriter, GroupRaftLog, type GroupWrite } from "./group-raft-log.ts";
import { MemoryStorage } from "./storage.ts";
import type { Snapshot } from "./types.ts";

export interface RaftLogEngineOptions {
  /** A segment this large is closed at the next write, and a new one begun (default 64 MiB). */
  segmentBytesMax?: number;
  /** Snapshot data larger than this goes in a file of its own rather than the log (default 4 KiB). */
  snapshotInlineBytesMax?: number;
}

const SEGMENT_BYTES_MAX = 64 << 20;
/** HomeKV's snapshots are one byte standing for a checkpoint the member keeps (member-checkpoints.ts). */
const SNAPSHOT_INLINE_BYTES_MAX = 4096;

interface Pending extends GroupWrite {
  resolve: () => void;
  reject: (error: unknown) => void;
}

/**
 * The Raft logs of many groups in one directory (formats in group-log-format.ts), so that a process
 * hosting many partitions' groups syncs one file where it would sync one per group.
 *
 * - Group commit across groups: the writes of every group made in one event-loop turn, and those
 *   made while a sync runs, go to the disk in one append and one sync; each resolves only after the
 *   sync that covers it. A write that needs no sync rides along and causes none.
 * - Segments rotate at `segmentBytesMax`: the current one is synced, then the new one begins with
 *   every group's hard state and snapshot written again, synced; from then on those records in
 *   older segments are superseded, and the oldest segments whose entries every group has compacted
 *   away are removed (group-log-segments.ts). A crash during a rotation leaves the new segment
 *   torn or whole, restating what the older ones hold either way.
 * - Large snapshot data goes in a file of its own, synced before the record that names it.
 * - At open, replay rebuilds every group (group-log-replay.ts); snapshot data files no record
 *   names (a crash between the file and the record) are removed.
 *
 * - A failed sync stops every group until the engine is reopened (syncOrBreak); a failed append
 *   is cut back and the engine goes on.
 *
 * Bounds: each group has at most one write queued (its operations run one at a time), so a batch
 * holds at most one write per group.
 */
export class RaftLogEngine implements GroupLogWriter {
  private readonly logs = new Map<number, GroupRaftLog>();
  private pending: Pending[] = [];
  private scheduled = false;
  private flushing: Promise<void> | undefined;
  /**
   * Written since the last sync: a rotation must sync the segment before another follows it. True
   * at open: the segment may end in writes a clean close left unsynced.
   */
  private unsynced = true;
  private broken: Error | undefined;
  private readonly segmentBytesMax: number;
  private readonly inlineBytesMax: number;

  private constructor(
    private readonly fs: FileSystem,
    readonly dir: string,
    private file: AppendFile,
    private sequence: number,
    private readonly usage: SegmentUsage,
    private nextDataFile: number,
    options: RaftLogEngineOptions,
  ) {
    this.segmentBytesMax = options.segmentBytesMax ?? SEGMENT_BYTES_MAX;
    this.inlineBytesMax = options.snapshotInlineBytesMax ?? SNAPSHOT_INLINE_BYTES_MAX;
  }

  static async open(
    fs: FileSystem,
    dir: string,
    onTornTail: (line: string) => void = () => {},
    options: RaftLogEngineOptions = {},
  ): Promise<RaftLogEngine> {
    await fs.mkdirp(dir);
    const replayed = await replayGroupLog(fs, dir, onTornTail);
    const { sequence, usage } = replayed;
    const file = await fs.openAppend(`${dir}/${GROUP_SEGMENT.fileName(sequence)}`);
    if (replayed.goodBytes < file.size) await file.truncate(replayed.goodBytes);
    if (file.size === 0) {
      await file.append(GROUP_SEGMENT.encodeHeader(sequence));
      await file.sync();
      await fs.syncDir(dir);
    }
    usage.add(sequence);
    const nextDataFile = Math.max(-1, ...replayed.snapshotFiles) + 1;
    const engine = new RaftLogEngine(fs, dir, file, sequence, usage, nextDataFile, options);
    for (const [id, group] of replayed.groups)
      engine.logs.set(id, new GroupRaftLog(id, engine, group.memory, group.snapshotFile));
    // Data files no record names: written before a crash cut off their record, or superseded.
    const named = new Set([...engine.logs.values()].flatMap((log) => log.dataFiles()));
    for (const number of replayed.snapshotFiles)
      if (!named.has(number)) await fs.remove(`${dir}/${GROUP_SNAPSHOT.fileName(number)}`);
    return engine;
  }

  /** Group `id`'s log; an empty one when the engine holds nothing of it. */
  group(id: number): GroupRaftLog {
    assert(Number.isSafeInteger(id) && id >= 0, () => `group id ${id}`);
    let log = this.logs.get(id);
    if (log === undefined) this.logs.set(id, (log = new GroupRaftLog(id, this, new MemoryStorage(), undefined)));
    return log;
  }

  /** The groups held, in no particular order. */
  groups(): number[] {
    return [...this.logs.keys()];
  }

  /**
   * A replica moved away: its records become garbage once the removal is durable. The group's log
   * refuses every call from then on; `group(id)` after it starts an empty one.
   */
  async removeGroup(id: number): Promise<void> {
    await this.logs.get(id)?.remove();
  }

  /**
   * A replica removed from its group: as removeGroup, keeping a tombstone (group-log-format.ts) so
   * that the group's next log here begins at a term after every one the retired replica voted in.
   * A replica of the group placed here again (a later move) may then never vote twice in one term.
   */
  async retireGroup(id: number): Promise<void> {
    await this.logs.get(id)?.remove(true);
  }

  /** An empty log of group `id` whose hard state begins at `term` (a retired replica's successor). */
  private tombstone(id: number, term: number): GroupRaftLog {
    const memory = new MemoryStorage();
    memory.setHardState({ term, vote: 0, commit: 0 });
    return new GroupRaftLog(id, this, memory, undefined);
  }

  /** Waits for every group's calls made so far, then closes the segment. */
  async close(): Promise<void> {
    await Promise.all([...this.logs.values()].map((log) => log.close().catch(() => {})));
    await this.flushing;
    await this.file.close();
  }

  failure(): Error | undefined {
    return this.broken;
  }

  write(write: GroupWrite): Promise<void> {
    return new Promise((resolve, reject) => {
      this.pending.push({ ...write, resolve, reject });
      this.schedule();
    });
  }

  async saveSnapshotData(group: number, snapshot: Snapshot): Promise<number | undefined> {
    if (snapshot.data.byteLength <= this.inlineBytesMax) return undefined;
    const number = this.nextDataFile++;
    const path = `${this.dir}/${GROUP_SNAPSHOT.fileName(number)}`;
    await this.fs.createExclusive(path, snapshotDataFile(number, group, snapshot));
    const written = await this.fs.openAppend(path);
    await written.sync();
    await written.close();
    await this.fs.syncDir(this.dir);
    return number;
  }

  async dropSnapshotData(file: number): Promise<void> {
    await this.fs.remove(`${this.dir}/${GROUP_SNAPSHOT.fileName(file)}`).catch(() => {});
  }

  /** The writes of this turn go out together at its end; a flush under way takes them in its next round. */
  private schedule(): void {
    if (this.scheduled || this.flushing) return;
    this.scheduled = true;
    setImmediate(() => {
      this.scheduled = false;
      this.flushing = this.flush().finally(() => {
        this.flushing = undefined;
        if (this.pending.length > 0) this.schedule();
      });
    });
  }

  private async flush(): Promise<void> {
    // Each round takes everything pending: what arrived during the last round's sync goes in this one.
    while (this.pending.length > 0) {
      const batch = this.pending;
      this.pending = [];
      try {
        await this.writeBatch(batch);
      } catch (error) {
        for (const write of batch) write.reject(error);
        continue;
      }
      for (const write of batch) {
        if (write.voidsEarlier) this.usage.forget(write.group);
        if (write.lastEntry !== undefined) this.usage.noteEntries(this.sequence, write.group, write.lastEntry);
        // A tombstone takes the group's place in the same turn: a rotation the next round of this
        // flush makes restates it, before the segment with the removal record may go.
        if (write.removesGroup) this.logs.delete(write.group);
        if (write.tombstone !== undefined) this.logs.set(write.group, this.tombstone(write.group, write.tombstone));
        write.written();
        write.resolve();
      }
    }
  }

  private async writeBatch(batch: readonly Pending[]): Promise<void> {
    if (this.broken) throw this.broken;
    if (this.file.size >= this.segmentBytesMax) await this.rotate();
    const sync = batch.some((write) => write.sync);
    const before = this.file.size;
    try {
      await this.file.append(Buffer.concat(batch.map((write) => write.bytes)));
      if (sync) await this.syncSegment();
    } catch (error) {
      // Nothing half-written may stay behind a later append: cut back to where this one began.
      await this.file.truncate(before).catch((cut) => this.breaks(cut));
      throw error;
    }
    this.unsynced = !sync;
  }

  /** Closes the current segment and begins the next, restating every group; then removes what no group needs. */
  private async rotate(): Promise<void> {
    const { fs, dir } = this;
    // Only the last segment may end torn: the current one must be whole before another follows it.
    if (this.unsynced) await this.syncSegment();
    this.unsynced = false;
    const sequence = this.sequence + 1;
    const path = `${dir}/${GROUP_SEGMENT.fileName(sequence)}`;
    const restated = [
      GROUP_SEGMENT.encodeHeader(sequence),
      ...[...this.logs.values()].flatMap((log) => log.restated()),
    ];
    let file: AppendFile | undefined;
    try {
      file = await fs.openAppend(path);
      await file.truncate(0);
      await file.append(Buffer.concat(restated));
      await file.sync();
      await fs.syncDir(dir);
    } catch (error) {
      // A half-made segment restates what the current one holds now; once the current one takes
      // another write it would be stale, so it goes, or nothing more is written.
      await file?.close().catch(() => {});
      await fs.remove(path).catch((cut) => this.breaks(cut));
      throw error;
    }
    const previous = this.file;
    this.file = file;
    this.sequence = sequence;
    this.usage.add(sequence);
    await previous.close().catch(() => {});
    // Cleanup: what fails here is retried at the next rotation.
    await this.removeUnneeded().catch(() => {});
  }

  private async removeUnneeded(): Promise<void> {
    const removable = this.usage.removablePrefix(this.sequence, (group) => this.logs.get(group)?.snapshot().index);
    // Oldest first: a crash part-way leaves a prefix removed, which replays as well as all of it.
    for (const sequence of removable) {
      await this.fs.remove(`${this.dir}/${GROUP_SEGMENT.fileName(sequence)}`);
      this.usage.drop(sequence);
    }
    if (removable.length > 0) await this.fs.syncDir(this.dir);
  }

  /** Syncs the current segment; a failed sync breaks the engine (syncOrBreak says why). */
  private syncSegment(): Promise<void> {
    return syncOrBreak(this.file, (error) => this.breaks(error));
  }

  private breaks(error: unknown): void {
    this.broken ??= error instanceof Error ? error : new Error(String(error));
  }
}

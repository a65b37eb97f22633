import { corruptionError, decodeAt } from "../../io/format/corruption.ts";
import { readFrame } from "../../io/format/frame.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import {
  decodeRecord,
  GROUP_SEGMENT,
  GROUP_SNAPSHOT,
  type GroupRecord,
  readSnapshotData,
  type SnapshotRecord,
} from "./group-log-format.ts";
import { SegmentUsage } from "./group-log-segments.ts";
import { MemoryStorage } from "./storage.ts";
import { EMPTY_SNAPSHOT, type Entry, type HardState } from "./types.ts";

/** A group as replay rebuilt it, and the snapshot data file its snapshot names (if any). */
export interface ReplayedGroup {
  memory: MemoryStorage;
  snapshotFile: number | undefined;
}

export interface Replayed {
  groups: Map<number, ReplayedGroup>;
  /** The last segment (0 when there is none yet), and where its whole records end. */
  sequence: number;
  goodBytes: number;
  usage: SegmentUsage;
  /** The numbers of the snapshot data files in the directory, named by a record or not. */
  snapshotFiles: number[];
}

interface Place {
  path: string;
  offset: number;
}

/**
 * One group's records applied in log order, as MemoryStorage would take them, except that its
 * entries may start with a hole: the segments that held the entries before them were removed,
 * and a later record (the snapshot written again at a rotation) covers what they held.
 *
 *   segment 3 (kept):  group 7 entries 41..60
 *   segment 5:         group 7 snapshot at 45 (a compaction), hard state
 *   replay: 41..60 (a hole below 41), then the snapshot drops 41..45: 46..60 follow it, no hole.
 */
class GroupReplay {
  hardState: HardState = { term: 0, vote: 0, commit: 0 };
  snapshot: SnapshotRecord = { snapshot: EMPTY_SNAPSHOT, replaces: false, file: undefined };
  private entries: Entry[] = [];
  /** The records whose entries began after a hole: where a hole left at the end is reported. */
  private holes: (Place & { index: number })[] = [];

  append(entries: readonly Entry[], place: Place): void {
    // Entries the snapshot already stands for are skipped; the rest replace what they conflict with.
    const kept = entries.filter((entry) => entry.index > this.snapshot.snapshot.index);
    if (kept.length === 0) return;
    const first = kept[0]!.index;
    let held = this.entries.length;
    while (held > 0 && this.entries[held - 1]!.index >= first) held--;
    this.entries.length = held;
    const last = this.entries.at(-1)?.index ?? this.snapshot.snapshot.index;
    if (first > last + 1) this.holes.push({ ...place, index: first });
    this.entries.push(...kept);
  }

  takeSnapshot(record: SnapshotRecord): void {
    this.snapshot = record;
    const covered = record.snapshot.index;
    if (record.replaces) this.entries = [];
    else {
      let drop = 0;
      while (drop < this.entries.length && this.entries[drop]!.index <= covered) drop++;
      this.entries = this.entries.slice(drop);
    }
  }

  /** The group as MemoryStorage, its snapshot's data read from `data` when in a file. */
  finish(group: number, dir: string, data: Uint8Array | undefined): MemoryStorage {
    let expected = this.snapshot.snapshot.index + 1;
    for (const entry of this.entries) {
      if (entry.index !== expected) {
        const place = this.holes.find((hole) => hole.index === entry.index) ?? { path: dir, offset: 0 };
        throw corruptionError(
          place.path,
          place.offset,
          `group ${group}'s entries from ${entry.index} leave a gap after ${expected - 1}`,
        );
      }
      expected++;
    }
    const memory = new MemoryStorage();
    memory.applySnapshot(data === undefined ? this.snapshot.snapshot : { ...this.snapshot.snapshot, data });
    memory.append(this.entries);
    memory.setHardState(this.hardState);
    return memory;
  }
}

/**
 * Reads a RaftLogEngine's directory: every segment in sequence order, each group's records in
 * file order. A torn last record of the last segment is reported through `onTornTail` and left
 * out; any other damage stops the replay, naming the file and the offset.
 */
export async function replayGroupLog(
  fs: FileSystem,
  dir: string,
  onTornTail: (line: string) => void,
): Promise<Replayed> {
  const names = await fs.list(dir);
  const sequences = names.flatMap((name) => GROUP_SEGMENT.parseFileName(name) ?? []).sort((a, b) => a - b);
  const snapshotFiles = names.flatMap((name) => GROUP_SNAPSHOT.parseFileName(name) ?? []);
  const replays = new Map<number, GroupReplay>();
  const usage = new SegmentUsage();
  let goodBytes = 0;
  for (const [i, sequence] of sequences.entries()) {
    const path = `${dir}/${GROUP_SEGMENT.fileName(sequence)}`;
    const bytes = await fs.readFile(path);
    usage.add(sequence);
    const last = i === sequences.length - 1;
    goodBytes = replaySegment(
      bytes,
      path,
      (record, offset) => {
        const { group } = record;
        if (record.type === "removal") {
          replays.delete(group);
          usage.forget(group);
          if (record.term > 0) {
            const retired = new GroupReplay();
            retired.hardState = { term: record.term, vote: 0, commit: 0 };
            replays.set(group, retired);
          }
          return;
        }
        let replay = replays.get(group);
        if (replay === undefined) replays.set(group, (replay = new GroupReplay()));
        if (record.type === "hardState") replay.hardState = record.hardState;
        else if (record.type === "entries") {
          replay.append(record.entries, { path, offset });
          const lastIndex = record.entries.at(-1)?.index;
          if (lastIndex !== undefined) usage.noteEntries(sequence, group, lastIndex);
        } else {
          replay.takeSnapshot(record);
          if (record.replaces) usage.forget(group);
        }
      },
      last ? onTornTail : undefined,
    );
  }
  const groups = new Map<number, ReplayedGroup>();
  for (const [group, replay] of replays) {
    const file = replay.snapshot.file;
    let data: Uint8Array | undefined;
    if (file !== undefined) {
      const path = `${dir}/${GROUP_SNAPSHOT.fileName(file)}`;
      if (!snapshotFiles.includes(file))
        throw corruptionError(
          path,
          0,
          `missing: group ${group}'s snapshot at ${replay.snapshot.snapshot.index} is in it`,
        );
      data = readSnapshotData(await fs.readFile(path), path, group, replay.snapshot.snapshot);
    }
    groups.set(group, { memory: replay.finish(group, dir, data), snapshotFile: file });
  }
  return { groups, sequence: sequences.at(-1) ?? 0, goodBytes, usage, snapshotFiles };
}

/**
 * Hands each record of segment `bytes` to `apply` with its offset; returns where the whole records
 * end. A torn last record is reported through `onTornTail` when given; without it (a segment before
 * the last, synced whole before the next began) it is damage.
 */
function replaySegment(
  bytes: Uint8Array,
  path: string,
  apply: (record: GroupRecord, offset: number) => void,
  onTornTail: ((line: string) => void) | undefined,
): number {
  // Each round moves past one whole frame or returns: bounded by the segment's length.
  for (let offset = 0; ; ) {
    const read = readFrame(bytes, offset);
    if (read.kind === "end") return offset;
    if (read.kind === "corrupt") throw corruptionError(path, offset, read.reason);
    if (read.kind === "torn") {
      if (onTornTail === undefined)
        throw corruptionError(path, offset, `a segment before the last one ends in a torn record (${read.reason})`);
      onTornTail(`${path}: cut ${bytes.byteLength - offset} bytes of a torn last record (${read.reason})`);
      return offset;
    }
    if (offset === 0) decodeAt(path, offset, () => GROUP_SEGMENT.decodeHeader(read.payload));
    else
      apply(
        decodeAt(path, offset, () => decodeRecord(read.payload)),
        offset,
      );
    offset = read.next;
  }
}

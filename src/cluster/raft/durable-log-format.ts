import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";
import { corruptionError, decodeAt } from "../../io/format/corruption.ts";
import { FileKind } from "../../io/format/file-kind.ts";
import { encodeFrame, readFrame } from "../../io/format/frame.ts";
import { readEntryBody, writeEntryBody } from "./entry-format.ts";
import type { MemoryStorage } from "./storage.ts";
import type { ConfState, Entry, HardState, Snapshot } from "./types.ts";

/**
 * The Raft log's files, frozen formats (segments version 1, snapshots version 2), in the WAL's
 * checksummed frames
 * (src/io/format/frame.ts):
 *
 * Segment `<20-digit sequence>.raftlog`: frame 0 the file header (FileKind "HKVRFT"), then records,
 * each a frame starting with a u8 type:
 *   1 hard state   u64 term · u64 vote · u64 commit
 *   2 entries      u32 n · n × (u64 index · u64 term · entry body), the body as entry-format.ts
 *                  has it (the peers' messages share it): u8 kind 0 empty · 1 data: u32 length ·
 *                  bytes · 2 configuration change: u8 type (1 add learner, 2 add voter, 3 remove) ·
 *                  u64 node
 *
 * Snapshot `<20-digit index>.raftsnap`: the file header (FileKind "HKVRSN"), then one frame:
 *   u64 index · u64 term · u64 first segment · u32 v · v × u64 voter · u32 l · l × u64 learner ·
 *   u32 length · data
 * "First segment" is the sequence of the segment written for this snapshot: the log is the newest
 * snapshot, then the segments from that one on; older segments are covered (version 1 had no such
 * field, and no version 1 snapshot was ever written outside tests).
 *
 * Replaying segments in sequence order: the last hard state wins; an entries record that starts at
 * or below the last index held replaces the entries from there (a conflict the leader resolved);
 * entries at or below the snapshot's index are skipped.
 */
export const SEGMENT = new FileKind("Raft log segment", "HKVRFT", 1, ".raftlog");
export const SNAPSHOT = new FileKind("Raft snapshot", "HKVRSN", 2, ".raftsnap");
const RECORD_HARD_STATE = 1;
const RECORD_ENTRIES = 2;

export function hardStateFrame(state: HardState): Uint8Array {
  return encodeFrame(
    new ByteWriter(32).u8(RECORD_HARD_STATE).u64(state.term).u64(state.vote).u64(state.commit).written(),
  );
}

export function entriesFrame(entries: readonly Entry[]): Uint8Array {
  const w = new ByteWriter(entriesBytes(entries));
  writeEntries(w.u8(RECORD_ENTRIES), entries);
  return encodeFrame(w.written());
}

/** About the bytes `writeEntries` takes, to size a writer. */
export function entriesBytes(entries: readonly Entry[]): number {
  return 64 + entries.reduce((sum, e) => sum + 24 + (e.data?.byteLength ?? 0), 0);
}

/** An entries record's body, shared with the group log's (group-log-format.ts): u32 n · n × (u64 index · u64 term · entry body). */
export function writeEntries(w: ByteWriter, entries: readonly Entry[]): void {
  w.u32(entries.length);
  for (const entry of entries) writeEntryBody(w.u64(entry.index).u64(entry.term), entry);
}

export function readEntries(r: ByteReader): Entry[] {
  const count = r.u32();
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) entries.push(readEntryBody(r, r.u64(), r.u64()));
  return entries;
}

/** A configuration as snapshots hold it: u32 v · v × u64 voter · u32 l · l × u64 learner. */
export function writeConf(w: ByteWriter, conf: ConfState): void {
  w.u32(conf.voters.length);
  for (const id of conf.voters) w.u64(id);
  w.u32(conf.learners.length);
  for (const id of conf.learners) w.u64(id);
}

export function readConf(r: ByteReader): ConfState {
  const voters = Array.from({ length: r.u32() }, () => r.u64());
  return { voters, learners: Array.from({ length: r.u32() }, () => r.u64()) };
}

/** A snapshot as its file holds it: with the sequence of the first segment after it. */
export interface SnapshotRecord {
  snapshot: Snapshot;
  firstSegment: number;
}

export function snapshotFile({ snapshot, firstSegment }: SnapshotRecord): Uint8Array {
  const conf = snapshot.conf ?? { voters: [], learners: [] };
  const w = new ByteWriter(72 + snapshot.data.byteLength + 8 * (conf.voters.length + conf.learners.length));
  writeConf(w.u64(snapshot.index).u64(snapshot.term).u64(firstSegment), conf);
  w.bytes(snapshot.data);
  return SNAPSHOT.encodeSingleFrameFile(snapshot.index, w.written());
}

/** A snapshot file, whole: written atomically, so any damage at all is corruption. */
export function readSnapshotFile(bytes: Uint8Array, path: string): SnapshotRecord {
  const { payload, offset } = SNAPSHOT.readSingleFrameFile(bytes, path);
  return decodeAt(path, offset, () => {
    const r = new ByteReader(payload);
    const index = r.u64();
    const term = r.u64();
    const firstSegment = r.u64();
    const conf = readConf(r);
    return {
      snapshot: { index, term, data: r.bytesCopy(), ...(conf.voters.length > 0 ? { conf } : {}) },
      firstSegment,
    };
  });
}

/**
 * Replays segment `bytes` into `memory`: `goodBytes`, where its whole records end (a torn last one
 * is reported and left out), and `firstEntry`, the index of the first entry of its first entries
 * record (undefined: none), which tells a later compaction whether replay could start there.
 */
export function replaySegment(
  bytes: Uint8Array,
  path: string,
  memory: MemoryStorage,
  onTornTail: (line: string) => void,
): { goodBytes: number; firstEntry: number | undefined } {
  let offset = 0;
  let firstEntry: number | undefined;
  for (;;) {
    const read = readFrame(bytes, offset);
    if (read.kind === "end") return { goodBytes: offset, firstEntry };
    if (read.kind === "corrupt") throw corruptionError(path, offset, read.reason);
    if (read.kind === "torn") {
      onTornTail(`${path}: cut ${bytes.byteLength - offset} bytes of a torn last record (${read.reason})`);
      return { goodBytes: offset, firstEntry };
    }
    const first = offset === 0;
    const entry = decodeAt(path, offset, () => {
      if (!first) return applyRecord(new ByteReader(read.payload), memory);
      SEGMENT.decodeHeader(read.payload);
      return undefined;
    });
    firstEntry ??= entry;
    offset = read.next;
  }
}

/** Applies one record; returns the index of an entries record's first entry. */
function applyRecord(reader: ByteReader, memory: MemoryStorage): number | undefined {
  const type = reader.u8();
  if (type === RECORD_HARD_STATE) {
    memory.setHardState({ term: reader.u64(), vote: reader.u64(), commit: reader.u64() });
    return undefined;
  }
  if (type !== RECORD_ENTRIES) throw new FormatError(`unknown record type ${type}`);
  const entries = readEntries(reader);
  // Entries the snapshot already stands for are skipped; the rest must follow what is held.
  const kept = entries.filter((entry) => entry.index > memory.snapshot().index);
  if (kept.length > 0 && kept[0]!.index > memory.lastIndex() + 1) {
    throw new FormatError(`entries from ${kept[0]!.index} leave a gap after ${memory.lastIndex()}`);
  }
  memory.append(kept);
  return entries[0]?.index;
}

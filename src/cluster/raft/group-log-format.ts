import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";
import { decodeAt } from "../../io/format/corruption.ts";
import { FileKind } from "../../io/format/file-kind.ts";
import { encodeFrame } from "../../io/format/frame.ts";
import { entriesBytes, readConf, readEntries, writeConf, writeEntries } from "./durable-log-format.ts";
import type { Entry, HardState, Snapshot } from "./types.ts";

/**
 * The files of a RaftLogEngine (group-log-engine.ts): the logs of many Raft groups in one series of
 * segments, frozen formats (version 1), in the WAL's checksummed frames (src/io/format/frame.ts).
 *
 * Segment `<20-digit sequence>.raftgroups`: frame 0 the file header (FileKind "HKVRGL"), then
 * records, each a frame: u8 type · u64 group · body:
 *   1 hard state   u64 term · u64 vote · u64 commit
 *   2 entries      as the single-group log's (durable-log-format.ts): u32 n · n × (u64 index ·
 *                  u64 term · entry body)
 *   3 snapshot     u8 kind (1 compaction: the entries after it stay · 2 install: it replaces the
 *                  log) · u64 index · u64 term · u32 v · v × u64 voter · u32 l · l × u64 learner ·
 *                  u8 where (0 here: u32 length · data · 1 in a file: u64 its number)
 *   4 removal      [u64 term]: the group left this process; its records before this one are
 *                  garbage. With a term (a retired replica), the group's log begins again empty at
 *                  that term, with no vote: a later replica of the group here never votes in a term
 *                  the one before it may have voted in
 *
 * Snapshot data file `<20-digit number>.raftgsnap`, for data over the engine's inline bound: the
 * file header (FileKind "HKVRGS", revision = the number), then one frame: u64 group · u64 index ·
 * u64 term · u32 length · data. Written whole and synced before the record naming it, so any
 * damage in it is corruption. Numbers are never reused.
 *
 * Replay reads the segments in sequence order and each group's records in file order, as
 * group-log-replay.ts says.
 */
export const GROUP_SEGMENT = new FileKind("Raft group log segment", "HKVRGL", 1, ".raftgroups");
export const GROUP_SNAPSHOT = new FileKind("Raft group snapshot", "HKVRGS", 1, ".raftgsnap");

const RECORD_HARD_STATE = 1;
const RECORD_ENTRIES = 2;
const RECORD_SNAPSHOT = 3;
const RECORD_REMOVAL = 4;
const SNAPSHOT_COMPACTION = 1;
const SNAPSHOT_INSTALL = 2;
const DATA_HERE = 0;
const DATA_IN_FILE = 1;

/** A snapshot record: its data is here, or (`file`) in a snapshot data file and empty here. */
export interface SnapshotRecord {
  snapshot: Snapshot;
  /** An install replaces the whole log; a compaction keeps the entries after it. */
  replaces: boolean;
  file: number | undefined;
}

export type GroupRecord =
  | { type: "hardState"; group: number; hardState: HardState }
  | { type: "entries"; group: number; entries: Entry[] }
  | ({ type: "snapshot"; group: number } & SnapshotRecord)
  | { type: "removal"; group: number; term: number };

export function hardStateRecord(group: number, state: HardState): Uint8Array {
  return encodeFrame(
    new ByteWriter(48).u8(RECORD_HARD_STATE).u64(group).u64(state.term).u64(state.vote).u64(state.commit).written(),
  );
}

export function entriesRecord(group: number, entries: readonly Entry[]): Uint8Array {
  const w = new ByteWriter(entriesBytes(entries));
  writeEntries(w.u8(RECORD_ENTRIES).u64(group), entries);
  return encodeFrame(w.written());
}

export function snapshotRecord(group: number, { snapshot, replaces, file }: SnapshotRecord): Uint8Array {
  const conf = snapshot.conf ?? { voters: [], learners: [] };
  const w = new ByteWriter(64 + (file === undefined ? snapshot.data.byteLength : 0));
  w.u8(RECORD_SNAPSHOT)
    .u64(group)
    .u8(replaces ? SNAPSHOT_INSTALL : SNAPSHOT_COMPACTION)
    .u64(snapshot.index)
    .u64(snapshot.term);
  writeConf(w, conf);
  if (file === undefined) w.u8(DATA_HERE).bytes(snapshot.data);
  else w.u8(DATA_IN_FILE).u64(file);
  return encodeFrame(w.written());
}

/** A group's removal; with `retiredTerm` (above 0), the term its next log begins at. */
export function removalRecord(group: number, retiredTerm = 0): Uint8Array {
  const w = new ByteWriter(24).u8(RECORD_REMOVAL).u64(group);
  return encodeFrame((retiredTerm > 0 ? w.u64(retiredTerm) : w).written());
}

/** A record's payload (its checksum held); a FormatError when it does not parse. */
export function decodeRecord(payload: Uint8Array): GroupRecord {
  const r = new ByteReader(payload);
  const type = r.u8();
  const group = r.u64();
  if (type === RECORD_HARD_STATE) return { type: "hardState", group, hardState: readHardState(r) };
  if (type === RECORD_ENTRIES) return { type: "entries", group, entries: readEntries(r) };
  if (type === RECORD_REMOVAL) return { type: "removal", group, term: r.remaining > 0 ? r.u64() : 0 };
  if (type !== RECORD_SNAPSHOT) throw new FormatError(`unknown record type ${type}`);
  const kind = r.u8();
  if (kind !== SNAPSHOT_COMPACTION && kind !== SNAPSHOT_INSTALL) throw new FormatError(`unknown snapshot kind ${kind}`);
  const index = r.u64();
  const term = r.u64();
  const conf = readConf(r);
  const where = r.u8();
  if (where !== DATA_HERE && where !== DATA_IN_FILE) throw new FormatError(`unknown snapshot data place ${where}`);
  const data = where === DATA_HERE ? r.bytesCopy() : new Uint8Array(0);
  const file = where === DATA_IN_FILE ? r.u64() : undefined;
  const snapshot = { index, term, data, ...(conf.voters.length > 0 ? { conf } : {}) };
  return { type: "snapshot", group, replaces: kind === SNAPSHOT_INSTALL, snapshot, file };
}

function readHardState(r: ByteReader): HardState {
  return { term: r.u64(), vote: r.u64(), commit: r.u64() };
}

export function snapshotDataFile(number: number, group: number, snapshot: Snapshot): Uint8Array {
  const w = new ByteWriter(40 + snapshot.data.byteLength);
  w.u64(group).u64(snapshot.index).u64(snapshot.term).bytes(snapshot.data);
  return GROUP_SNAPSHOT.encodeSingleFrameFile(number, w.written());
}

/** The data of snapshot data file `bytes`, which must be group `group`'s snapshot `snapshot` names. */
export function readSnapshotData(bytes: Uint8Array, path: string, group: number, snapshot: Snapshot): Uint8Array {
  const { payload, offset } = GROUP_SNAPSHOT.readSingleFrameFile(bytes, path);
  return decodeAt(path, offset, () => {
    const r = new ByteReader(payload);
    const held = { group: r.u64(), index: r.u64(), term: r.u64() };
    const named = { group, index: snapshot.index, term: snapshot.term };
    if (JSON.stringify(held) !== JSON.stringify(named))
      throw new FormatError(`holds ${JSON.stringify(held)} where the log names ${JSON.stringify(named)}`);
    return r.bytesCopy();
  });
}

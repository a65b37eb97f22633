import { ByteReader, ByteWriter, FormatError } from "../../storage/format/bytes.ts";
import { corruptionError, decodeAt } from "../../storage/format/corruption.ts";
import { FileKind } from "../../storage/format/file-kind.ts";
import { encodeFrame, readFrame } from "../../storage/format/frame.ts";
import type { AppendFile, FileSystem } from "../../storage/fs/file-system.ts";
import { errorCode } from "../../storage/fs/file-system.ts";
import { MemoryStorage, type RaftStorage } from "./storage.ts";
import type { ConfChange, Entry, HardState, Snapshot } from "./types.ts";

/**
 * A Raft node's log and hard state on disk: one append-only file of checksummed frames (the WAL's
 * frame format, src/storage/format/frame.ts), read whole at open, and kept in memory for the core.
 * Frozen format, version 1:
 *
 *   frame 0     file header (FileKind "HKVRFT", version 1, revision 0)
 *   frame ...   u8 record type, then
 *     1 hard state   u64 term · u64 vote · u64 commit
 *     2 entries      u32 n · n × (u64 index · u64 term · u8 kind · body)
 *                    kind 0 empty · 1 data: u32 length · bytes · 2 configuration change:
 *                    u8 type (1 add learner, 2 add voter, 3 remove) · u64 node
 *
 * Replay: the last hard state wins; an entries record whose first index is at or below the last
 * one held replaces the entries from there (a leader overwrote a conflicting suffix), exactly as
 * the core asked for it. A torn last frame (a crash mid-append) is cut off; damage anywhere else
 * stops the open with the file and offset. `persist` appends and syncs before it returns, so that
 * the caller sends a Ready's messages only once what they promise is durable.
 */
const RAFT_LOG = new FileKind("Raft log", "HKVRFT", 1, ".raftlog");
const FILE_NAME = RAFT_LOG.fileName(0);
const RECORD_HARD_STATE = 1;
const RECORD_ENTRIES = 2;
const KIND_EMPTY = 0;
const KIND_DATA = 1;
const KIND_CONF = 2;
const CONF_TYPE_CODES: Readonly<Record<ConfChange["type"], number>> = { addLearner: 1, addVoter: 2, remove: 3 };
const CONF_TYPES = new Map(Object.entries(CONF_TYPE_CODES).map(([type, code]) => [code, type as ConfChange["type"]]));

export class DurableRaftLog implements RaftStorage {
  private constructor(
    private readonly memory: MemoryStorage,
    private readonly file: AppendFile,
    readonly path: string,
  ) {}

  /** Opens (or creates) the log in `dir`; `onTornTail` hears how many bytes a crash left half-written. */
  static async open(fs: FileSystem, dir: string, onTornTail: (line: string) => void = () => {}): Promise<DurableRaftLog> {
    await fs.mkdirp(dir);
    const path = `${dir}/${FILE_NAME}`;
    let bytes: Uint8Array | undefined;
    try {
      bytes = await fs.readFile(path);
    } catch (error) {
      if (errorCode(error) !== "ENOENT") throw error;
    }
    const memory = new MemoryStorage();
    let keep = 0;
    if (bytes !== undefined && bytes.byteLength > 0) keep = replay(bytes, path, memory, onTornTail);
    const file = await fs.openAppend(path);
    if (keep < file.size) await file.truncate(keep);
    if (file.size === 0) {
      await file.append(RAFT_LOG.encodeHeader(0));
      await file.sync();
      await fs.syncDir(dir);
    }
    return new DurableRaftLog(memory, file, path);
  }

  hardState(): HardState {
    return this.memory.hardState();
  }

  /** Snapshots are not written to disk yet: the log is never compacted. */
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
    if (entries.length > 0) frames.push(encodeFrame(encodeEntries(entries)));
    if (hardState) frames.push(encodeFrame(new ByteWriter(32).u8(RECORD_HARD_STATE).u64(hardState.term).u64(hardState.vote).u64(hardState.commit).written()));
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

  async close(): Promise<void> {
    await this.file.close();
  }
}

function encodeEntries(entries: readonly Entry[]): Uint8Array {
  const w = new ByteWriter(64 + entries.reduce((sum, e) => sum + 24 + (e.data?.byteLength ?? 0), 0));
  w.u8(RECORD_ENTRIES).u32(entries.length);
  for (const entry of entries) {
    w.u64(entry.index).u64(entry.term);
    if (entry.conf) w.u8(KIND_CONF).u8(CONF_TYPE_CODES[entry.conf.type]).u64(entry.conf.node);
    else if (entry.data === null) w.u8(KIND_EMPTY);
    else w.u8(KIND_DATA).bytes(entry.data);
  }
  return w.written();
}

/** Applies every record of the file to `memory`; returns the length of the good prefix. */
function replay(bytes: Uint8Array, path: string, memory: MemoryStorage, onTornTail: (line: string) => void): number {
  let offset = 0;
  let first = true;
  for (;;) {
    const read = readFrame(bytes, offset);
    if (read.kind === "end") return offset;
    if (read.kind === "corrupt") throw corruptionError(path, offset, read.reason);
    if (read.kind === "torn") {
      onTornTail(`${path}: cut ${bytes.byteLength - offset} bytes of a torn last record (${read.reason})`);
      return offset;
    }
    const at = offset;
    decodeAt(path, at, () => {
      if (first) return RAFT_LOG.decodeHeader(read.payload);
      return applyRecord(new ByteReader(read.payload), memory);
    });
    first = false;
    offset = read.next;
  }
}

function applyRecord(reader: ByteReader, memory: MemoryStorage): void {
  const type = reader.u8();
  if (type === RECORD_HARD_STATE) {
    memory.setHardState({ term: reader.u64(), vote: reader.u64(), commit: reader.u64() });
    return;
  }
  if (type !== RECORD_ENTRIES) throw new FormatError(`unknown record type ${type}`);
  const entries: Entry[] = [];
  const count = reader.u32();
  for (let i = 0; i < count; i++) {
    const index = reader.u64();
    const term = reader.u64();
    entries.push(readEntryBody(reader, index, term));
  }
  if (entries.length > 0 && entries[0]!.index > memory.lastIndex() + 1) {
    throw new FormatError(`entries from ${entries[0]!.index} leave a gap after ${memory.lastIndex()}`);
  }
  memory.append(entries);
}

function readEntryBody(reader: ByteReader, index: number, term: number): Entry {
  const kind = reader.u8();
  if (kind === KIND_EMPTY) return { index, term, data: null };
  if (kind === KIND_DATA) return { index, term, data: reader.bytesCopy() };
  if (kind !== KIND_CONF) throw new FormatError(`unknown entry kind ${kind} at index ${index}`);
  const type = CONF_TYPES.get(reader.u8());
  if (type === undefined) throw new FormatError(`unknown configuration change at index ${index}`);
  return { index, term, data: null, conf: { type, node: reader.u64() } };
}

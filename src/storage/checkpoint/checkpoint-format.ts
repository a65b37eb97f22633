import { ByteReader, ByteWriter, FormatError, utf8At } from "../../io/format/bytes.ts";
import { FileKind } from "../../io/format/file-kind.ts";
import { encodeFrame, FRAME_HEADER_PLACEHOLDER, sealFrame } from "../../io/format/frame.ts";
import { ChainCursorFields } from "../mvcc/chain-cursor.ts";
import type { KeyChain } from "../mvcc/store.ts";

/**
 * The checkpoint file format (frozen; enum values are never renumbered). A checkpoint holds the
 * store at one revision — every key with the versions it still keeps (history within retention,
 * tombstones included), in key order — as frames (src/io/format/frame.ts):
 *
 *   frame 0      header: "HKVCKP" · u8 format version (1) · u64 revision
 *   frames       u8 type 3 (chains) · u32 count · per key: string key · u32 versions · per version:
 *                  u64 revision · u64 create revision · u32 version · u8 flags (1 tombstone, 2 has TTL)
 *                  · [u64 expires-at, Unix ms] · [bytes value, unless a tombstone]
 *   frame        u8 type 4 (meta) · u64 compacted revision: the oldest revision every chain can be
 *                  read at; after the chains, since GC may drop history while they are copied
 *                  (readers take the last meta frame wherever it is; earlier writers put it first)
 *   last frame   u8 type 2 (end) · u64 total keys
 *   (type 1, live entries only: u32 count · string key · u64 revision · bytes value — written by the
 *    first versions; still read, as keys with one version)
 *
 * A checkpoint is written under a temporary name and renamed when complete, so every frame must
 * read back: there is no torn tail to tolerate, and a missing end frame is damage.
 * File name: `<revision, 20 digits>.ckpt`.
 *
 * A member of a replicated cluster writes replicated checkpoints (its Raft snapshots): the same
 * frames under another header, numbered by the Raft index they cover instead of the revision, with
 * one more frame, first after the header, saying where in the Raft log the store stands (etcd's
 * consistent index) and who the members were then:
 *
 *   frame 0      header: "HKVRCP" · u8 format version (1) · u64 Raft index
 *   frame        u8 type 5 (raft) · u64 revision · u64 term of the entry at the index ·
 *                  u32 v · v × u64 voter · u32 l · l × u64 learner
 *   frame        u8 type 6 (replica) · u32 m · m × (string name · string peer address) ·
 *                  u32 r · r × (string request id · u64 revision · u64 deleted · u8 succeeded:
 *                  0 not a transaction, 1 false, 2 true)
 *                  — the state the replicated state machine keeps beside the store: the member
 *                  directory and the request ids applied, oldest first (what every member must
 *                  hold alike at the index, since both decide what later entries do)
 *   frame        (a partition's replica only) u8 type 7 (transactions) · bytes: the partition's
 *                  locks and transaction fates at the index (src/cluster/txn/txn-state-format.ts),
 *                  right after the replica frame (whose members and request ids are then empty)
 *   then         the chains, meta and end frames, as above
 *   File name: `<Raft index, 20 digits>.rckpt`.
 *
 * A plain checkpoint never holds a raft frame and a replicated one always does, first: either
 * reader refuses the other kind (a single server started on a replicated member's directory, or
 * the other way round, must not take one store for the other).
 */
export const CHECKPOINT_FILES = new FileKind("checkpoint", "HKVCKP", 1, ".ckpt");
export const REPLICATED_CHECKPOINT_FILES = new FileKind("replicated checkpoint", "HKVRCP", 1, ".rckpt");
const FRAME_ENTRIES = 1;
const FRAME_END = 2;
const FRAME_CHAINS = 3;
const FRAME_META = 4;
const FRAME_RAFT = 5;
const FRAME_REPLICA = 6;
const FRAME_TRANSACTIONS = 7;
const FLAG_TOMBSTONE = 1;
const FLAG_TTL = 2;

export function encodeMetaFrame(compactedRevision: number): Uint8Array {
  return encodeFrame(new ByteWriter(16).u8(FRAME_META).u64(compactedRevision).written());
}

/** Where a replicated checkpoint stands in the Raft log: the store at `revision` is the log applied through the header's index. */
export interface RaftPosition {
  revision: number;
  /** The term of the entry at the index. */
  term: number;
  /** The members as of the index (numeric Raft node ids). */
  voters: readonly number[];
  learners: readonly number[];
}

export function encodeRaftFrame(position: RaftPosition): Uint8Array {
  const out = new ByteWriter(64 + 8 * (position.voters.length + position.learners.length));
  out.u8(FRAME_RAFT).u64(position.revision).u64(position.term).u32(position.voters.length);
  for (const id of position.voters) out.u64(id);
  out.u32(position.learners.length);
  for (const id of position.learners) out.u64(id);
  return encodeFrame(out.written());
}

/** What a replicated checkpoint holds beside the store (frame type 6). */
export interface ReplicaState {
  members: readonly { name: string; peerAddress: string }[];
  /** Oldest first. */
  requestIds: readonly { id: string; revision: number; deleted: number; succeeded?: boolean }[];
  /** A partition's transaction state, encoded by its own format (frame type 7); absent elsewhere. */
  transactions?: Uint8Array;
}

export function encodeReplicaFrame(state: ReplicaState): Uint8Array {
  const out = new ByteWriter(64 + 48 * (state.members.length + state.requestIds.length));
  out.u8(FRAME_REPLICA).u32(state.members.length);
  for (const member of state.members) out.string(member.name).string(member.peerAddress);
  out.u32(state.requestIds.length);
  for (const write of state.requestIds) {
    const succeeded = write.succeeded === undefined ? 0 : write.succeeded ? 2 : 1;
    out.string(write.id).u64(write.revision).u64(write.deleted).u8(succeeded);
  }
  return encodeFrame(out.written());
}

/** Frame type 7, written after the replica frame when the state has transactions. */
export function encodeTransactionsFrame(transactions: Uint8Array): Uint8Array {
  return encodeFrame(new ByteWriter(16 + transactions.byteLength).u8(FRAME_TRANSACTIONS).bytes(transactions).written());
}

export function encodeChainsFrame(chains: readonly KeyChain[]): Uint8Array {
  const out = new ByteWriter(4096);
  out.raw(FRAME_HEADER_PLACEHOLDER).u8(FRAME_CHAINS).u32(chains.length);
  for (const { key, versions } of chains) {
    out.string(key).u32(versions.length);
    for (const v of versions) {
      const flags = (v.value === null ? FLAG_TOMBSTONE : 0) | (v.expiresAtMs === undefined ? 0 : FLAG_TTL);
      out.u64(v.revision).u64(v.createRevision).u32(v.version).u8(flags);
      if (v.expiresAtMs !== undefined) out.u64(v.expiresAtMs);
      if (v.value !== null) out.bytes(v.value);
    }
  }
  const frame = out.written();
  sealFrame(frame, 0);
  return frame;
}

export function encodeEndFrame(totalKeys: number): Uint8Array {
  return encodeFrame(new ByteWriter(16).u8(FRAME_END).u64(totalKeys).written());
}

/**
 * A frame of a checkpoint's body. A chains frame is not decoded at once: `keys` is its count, and
 * its chains are read in place by a FrameChainCursor, one at a time. `chains` are read at once only
 * in part (their count); the rest throws the FormatError of damaged contents when reached.
 */
export type BodyFrame =
  | { kind: "chains"; keys: number; chains: FrameChains }
  | { kind: "meta"; compactedRevision: number }
  | { kind: "raft"; position: RaftPosition }
  | { kind: "replica"; state: ReplicaState }
  | { kind: "transactions"; transactions: Uint8Array }
  | { kind: "end"; totalKeys: number };

/** The chains of one chains frame, for a FrameChainCursor: type 3, or type 1 (live entries, one version each). */
export interface FrameChains {
  readonly keys: number;
  readonly payload: Uint8Array;
  /** Positioned at the frame's first chain. */
  readonly reader: ByteReader;
  readonly liveEntries: boolean;
}

export function decodeBodyFrame(payload: Uint8Array): BodyFrame {
  const reader = new ByteReader(payload);
  const type = reader.u8();
  if (type === FRAME_CHAINS || type === FRAME_ENTRIES) {
    const keys = reader.u32();
    return { kind: "chains", keys, chains: { keys, payload, reader, liveEntries: type === FRAME_ENTRIES } };
  }
  let frame: BodyFrame;
  if (type === FRAME_END) frame = { kind: "end", totalKeys: reader.u64() };
  else if (type === FRAME_META) frame = { kind: "meta", compactedRevision: reader.u64() };
  else if (type === FRAME_RAFT) frame = { kind: "raft", position: readRaftPosition(reader) };
  else if (type === FRAME_REPLICA) frame = { kind: "replica", state: readReplicaState(reader) };
  else if (type === FRAME_TRANSACTIONS) frame = { kind: "transactions", transactions: reader.bytesCopy() };
  else throw new FormatError(`unknown checkpoint frame type ${type}`);
  checkConsumed(reader);
  return frame;
}

function checkConsumed(reader: ByteReader): void {
  if (reader.remaining !== 0) throw new FormatError(`${reader.remaining} stray bytes in a checkpoint frame`);
}

function readRaftPosition(reader: ByteReader): RaftPosition {
  const revision = reader.u64();
  const term = reader.u64();
  const voters = readIds(reader);
  const learners = readIds(reader);
  if (voters.length === 0) throw new FormatError("a raft frame with no voter");
  return { revision, term, voters, learners };
}

function readReplicaState(reader: ByteReader): ReplicaState {
  const members: { name: string; peerAddress: string }[] = [];
  // Counts are bounded by the bytes left (each item takes at least 8, or 21), before arrays grow.
  const count = (itemBytesMin: number, what: string) => {
    const n = reader.u32();
    if (n * itemBytesMin > reader.remaining) throw new FormatError(`${n} ${what} in ${reader.remaining} bytes`);
    return n;
  };
  for (let n = count(8, "members"); n > 0; n--) members.push({ name: reader.string(), peerAddress: reader.string() });
  const requestIds: ReplicaState["requestIds"][number][] = [];
  for (let n = count(21, "request ids"); n > 0; n--) {
    const id = reader.string();
    const revision = reader.u64();
    const deleted = reader.u64();
    const succeeded = reader.u8();
    if (succeeded > 2) throw new FormatError(`request id ${JSON.stringify(id)} has outcome ${succeeded}`);
    requestIds.push({ id, revision, deleted, ...(succeeded === 0 ? {} : { succeeded: succeeded === 2 }) });
  }
  return { members, requestIds };
}

function readIds(reader: ByteReader): number[] {
  const count = reader.u32();
  // A count the frame cannot hold is damage, found before an array of that size is made.
  if (count * 8 > reader.remaining) throw new FormatError(`${count} node ids in ${reader.remaining} bytes`);
  return Array.from({ length: count }, () => reader.u64());
}

/**
 * The chains of a checkpoint's chains frames as a ChainCursor, read in place from each frame's
 * payload: no string, object or view per key or version. `nextFrame` hands over the next frame's
 * chains, or undefined after the last. Damaged contents throw a FormatError when reached; a frame
 * must be read to its last byte.
 */
export class FrameChainCursor extends ChainCursorFields {
  /** Chains moved to, and those of them whose newest version is not a tombstone. */
  taken = 0;
  live = 0;
  /** Whether `nextChain` has answered false: every frame was read. */
  finished = false;
  private frame: FrameChains | undefined;
  private keysLeft = 0;
  private versionsLeft = 0;

  constructor(private readonly nextFrame: () => FrameChains | undefined) {
    super();
  }

  nextChain(): boolean {
    if (this.finished) return false;
    while (this.versionsLeft > 0) this.nextVersion();
    if (this.taken > 0 && this.valueLength >= 0) this.live++; // the chain left, as its newest version says
    this.valueLength = -1;
    while (this.keysLeft === 0) {
      if (this.frame) checkConsumed(this.frame.reader);
      this.frame = this.nextFrame();
      if (this.frame === undefined) {
        this.finished = true;
        return false;
      }
      this.keysLeft = this.frame.keys;
    }
    const { reader, payload, liveEntries } = this.frame!;
    this.keysLeft--;
    this.taken++;
    this.keyBytes = payload;
    this.keyLength = reader.u32();
    this.keyStart = reader.skip(this.keyLength);
    this.versionsLeft = liveEntries ? 1 : reader.u32();
    return true;
  }

  key(): string {
    return utf8At(this.keyBytes, this.keyStart, this.keyLength, this.keyStart - 4);
  }

  nextVersion(): boolean {
    if (this.versionsLeft === 0) return false;
    this.versionsLeft--;
    const { reader, payload, liveEntries } = this.frame!;
    this.valueBytes = payload;
    if (liveEntries) {
      this.revision = this.createRevision = reader.u64();
      this.version = 1;
      this.expiresAtMs = undefined;
      this.readValue(reader);
      return true;
    }
    this.revision = reader.u64();
    this.createRevision = reader.u64();
    this.version = reader.u32();
    const flags = reader.u8();
    this.expiresAtMs = flags & FLAG_TTL ? reader.u64() : undefined;
    if (flags & FLAG_TOMBSTONE) this.valueLength = -1;
    else this.readValue(reader);
    return true;
  }

  private readValue(reader: ByteReader): void {
    this.valueLength = reader.u32();
    this.valueStart = reader.skip(this.valueLength);
  }
}

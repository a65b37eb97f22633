import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";
import { FileKind } from "../../io/format/file-kind.ts";
import { encodeFrame, FRAME_HEADER_PLACEHOLDER, sealFrame } from "../../io/format/frame.ts";
import type { KeyChain } from "../mvcc/store.ts";
import type { Version } from "../mvcc/version-chain.ts";

/**
 * The checkpoint file format (frozen; enum values are never renumbered). A checkpoint holds the
 * store at one revision — every key with the versions it still keeps (history within retention,
 * tombstones included), in key order — as frames (src/io/format/frame.ts):
 *
 *   frame 0      header: "HKVCKP" · u8 format version (1) · u64 revision
 *   frame        u8 type 4 (meta) · u64 compacted revision
 *   frames       u8 type 3 (chains) · u32 count · per key: string key · u32 versions · per version:
 *                  u64 revision · u64 create revision · u32 version · u8 flags (1 tombstone, 2 has TTL)
 *                  · [u64 expires-at, Unix ms] · [bytes value, unless a tombstone]
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
 *   then         the meta, chains and end frames, as above
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
 * `read` decodes its chains one at a time, each handed over before the next is decoded (nothing
 * holds a frame's worth of objects); their values are views into `payload`. `read` throws the
 * FormatError of damaged contents when it reaches them.
 */
export type BodyFrame =
  | { kind: "chains"; keys: number; read: () => Generator<KeyChain> }
  | { kind: "meta"; compactedRevision: number }
  | { kind: "raft"; position: RaftPosition }
  | { kind: "replica"; state: ReplicaState }
  | { kind: "end"; totalKeys: number };

export function decodeBodyFrame(payload: Uint8Array): BodyFrame {
  const reader = new ByteReader(payload);
  const type = reader.u8();
  if (type === FRAME_CHAINS || type === FRAME_ENTRIES) {
    const keys = reader.u32();
    return { kind: "chains", keys, read: () => (type === FRAME_CHAINS ? readChains : readLiveEntries)(reader, keys) };
  }
  let frame: BodyFrame;
  if (type === FRAME_END) frame = { kind: "end", totalKeys: reader.u64() };
  else if (type === FRAME_META) frame = { kind: "meta", compactedRevision: reader.u64() };
  else if (type === FRAME_RAFT) frame = { kind: "raft", position: readRaftPosition(reader) };
  else if (type === FRAME_REPLICA) frame = { kind: "replica", state: readReplicaState(reader) };
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

function* readChains(reader: ByteReader, keys: number): Generator<KeyChain> {
  for (let n = keys; n > 0; n--) {
    const key = reader.string();
    const versions: Version[] = [];
    for (let m = reader.u32(); m > 0; m--) {
      const revision = reader.u64();
      const createRevision = reader.u64();
      const version = reader.u32();
      const flags = reader.u8();
      const expiresAtMs = flags & FLAG_TTL ? reader.u64() : undefined;
      const value = flags & FLAG_TOMBSTONE ? null : reader.raw(reader.u32());
      versions.push({
        revision,
        createRevision,
        version,
        value,
        ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
      });
    }
    yield { key, versions };
  }
  checkConsumed(reader);
}

function* readLiveEntries(reader: ByteReader, keys: number): Generator<KeyChain> {
  for (let n = keys; n > 0; n--) {
    const key = reader.string();
    const revision = reader.u64();
    yield { key, versions: [{ revision, createRevision: revision, version: 1, value: reader.raw(reader.u32()) }] };
  }
  checkConsumed(reader);
}

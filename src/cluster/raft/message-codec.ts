import { assert } from "../../errors.ts";
import { ByteReader, ByteWriter, FormatError } from "../../io/format/bytes.ts";
import { ENTRY_BODY_BYTES_MIN, readEntryBody, writeEntryBody } from "./entry-format.ts";
import type { ConfState, Entry, Message, MessageType, NodeId, Snapshot } from "./types.ts";

/**
 * The Raft messages peers exchange, a batch to one payload (the peer transport frames and
 * authenticates it). Frozen format, version 1; codes are never renumbered, a change of layout is a
 * new version. Integers are varints (bytes.ts: LEB128, one encoding per value) unless marked u8,
 * u32 or u64; a flag is a u8 0 or 1.
 *
 *   payload    u8 version 1 · varint n · n × message
 *   message    varint group · u8 type · varint from · varint to · varint term · body
 *
 *   type               body
 *   1  preVote         varint lastIndex · varint lastTerm · flag transfer
 *   2  vote            (as preVote)
 *   3  preVoteResp     flag reject
 *   4  voteResp        flag reject
 *   5  append          varint prevIndex · varint prevTerm · varint commit · varint n ·
 *                      n × (varint term · entry body); entry i has index prevIndex + 1 + i; the entry
 *                      body is the durable log's (entry-format.ts): u8 kind 0 empty · 1 data: u32
 *                      length · bytes · 2 configuration change: u8 type (1 add learner, 2 add
 *                      voter, 3 remove) · u64 node · 3 the same naming the member: then its name
 *                      and peer address, each u32 length · UTF-8
 *   6  appendResp      varint index · flag reject · when rejected: varint hintIndex · varint hintTerm
 *   7  heartbeat       varint commit · varint round
 *   8  heartbeatResp   varint round
 *   9  readIndex       u32 length · UTF-8 request id
 *   10 readIndexResp   u32 length · UTF-8 request id · varint index
 *   11 timeoutNow      (nothing)
 *   12 snapshot        varint index · varint term · flag conf · when conf: varint v · v × varint
 *                      voter · varint l · l × varint learner · then u32 length · data
 *   13 quiesce         varint commit
 *
 * Group ids and node ids are positive. A decoded batch is well formed to the last field: no unknown
 * code, no byte left over, no count larger than the bytes left could hold, entries contiguous after
 * prevIndex, a configuration with a voter and no node twice. Whatever breaks is a FormatError that
 * names the byte offset.
 */
export const MESSAGE_FORMAT_VERSION = 1;

/** One message and the Raft group it belongs to (several groups share a connection). */
export interface GroupMessage {
  readonly group: number;
  readonly message: Message;
}

const TYPE_CODES: Readonly<Record<MessageType, number>> = {
  preVote: 1,
  vote: 2,
  preVoteResp: 3,
  voteResp: 4,
  append: 5,
  appendResp: 6,
  heartbeat: 7,
  heartbeatResp: 8,
  readIndex: 9,
  readIndexResp: 10,
  timeoutNow: 11,
  snapshot: 12,
  quiesce: 13,
};
const TYPES = new Map(Object.entries(TYPE_CODES).map(([type, code]) => [code, type as MessageType]));
/** group, type, from, to and term: a byte each at least (a timeoutNow is just that). */
const MESSAGE_BYTES_MIN = 5;
/** An entry's term and the smallest body. */
const ENTRY_BYTES_MIN = 1 + ENTRY_BODY_BYTES_MIN;

/** The payload for `batch` (a view of the writer's buffer, which was sized from a hint). */
export function encodeMessages(batch: readonly GroupMessage[]): Uint8Array {
  const w = new ByteWriter(batch.reduce((sum, { message }) => sum + messageBytesHint(message), 16));
  w.u8(MESSAGE_FORMAT_VERSION).varint(batch.length);
  for (const { group, message: m } of batch) {
    assert(group > 0 && m.from > 0 && m.to > 0, () => `group ${group}, from ${m.from}, to ${m.to}: ids are positive`);
    w.varint(group).u8(TYPE_CODES[m.type]).varint(m.from).varint(m.to).varint(m.term);
    writeBody(w, m);
  }
  return w.written();
}

/** The batch in `payload`, or a FormatError; entry and snapshot data are copies, not views of it. */
export function decodeMessages(payload: Uint8Array): GroupMessage[] {
  const r = new ByteReader(payload);
  const version = r.u8();
  if (version !== MESSAGE_FORMAT_VERSION) throw new FormatError(`unknown version ${version} at byte 0`);
  const count = readCount(r, MESSAGE_BYTES_MIN, "messages");
  const batch: GroupMessage[] = [];
  for (let i = 0; i < count; i++) batch.push(readMessage(r));
  if (r.remaining > 0) throw new FormatError(`${r.remaining} bytes left over at byte ${r.position}`);
  return batch;
}

/**
 * About the bytes `m` takes in a payload: its entries' and data's, and room for its fixed fields,
 * so that the writer seldom grows and a sender can keep payloads near a size.
 */
export function messageBytesHint(m: Message): number {
  if (m.type === "append") return 48 + m.entries.reduce((sum, e) => sum + 16 + (e.data?.byteLength ?? 0), 0);
  if (m.type === "snapshot") return 64 + m.snapshot.data.byteLength;
  return 32;
}

function writeBody(w: ByteWriter, m: Message): void {
  switch (m.type) {
    case "preVote":
    case "vote":
      w.varint(m.lastIndex).varint(m.lastTerm).u8(Number(m.transfer));
      return;
    case "preVoteResp":
    case "voteResp":
      w.u8(Number(m.reject));
      return;
    case "append":
      w.varint(m.prevIndex).varint(m.prevTerm).varint(m.commit).varint(m.entries.length);
      m.entries.forEach((entry, i) => {
        assert(entry.index === m.prevIndex + 1 + i, () => `entry ${entry.index} of an append after ${m.prevIndex}`);
        writeEntryBody(w.varint(entry.term), entry);
      });
      return;
    case "appendResp":
      w.varint(m.index).u8(Number(m.reject));
      if (m.reject) w.varint(m.hintIndex).varint(m.hintTerm);
      return;
    case "heartbeat":
      w.varint(m.commit).varint(m.round);
      return;
    case "heartbeatResp":
      w.varint(m.round);
      return;
    case "quiesce":
      w.varint(m.commit);
      return;
    case "readIndex":
      w.string(m.request);
      return;
    case "readIndexResp":
      w.string(m.request).varint(m.index);
      return;
    case "timeoutNow":
      return;
    case "snapshot":
      return writeSnapshot(w, m.snapshot);
  }
}

function writeSnapshot(w: ByteWriter, snapshot: Snapshot): void {
  w.varint(snapshot.index)
    .varint(snapshot.term)
    .u8(Number(snapshot.conf !== undefined));
  if (snapshot.conf) {
    const problem = confProblem(snapshot.conf);
    assert(problem === undefined, () => `snapshot at ${snapshot.index}: ${problem}`);
    for (const ids of [snapshot.conf.voters, snapshot.conf.learners]) {
      w.varint(ids.length);
      for (const id of ids) w.varint(id);
    }
  }
  w.bytes(snapshot.data);
}

function readMessage(r: ByteReader): GroupMessage {
  const group = readId(r, "group");
  const at = r.position;
  const code = r.u8();
  const type = TYPES.get(code);
  if (type === undefined) throw new FormatError(`unknown message type ${code} at byte ${at}`);
  const from = readId(r, "sender");
  const to = readId(r, "receiver");
  const term = r.varint();
  return { group, message: readBody(r, type, { from, to, term }) };
}

function readBody(r: ByteReader, type: MessageType, envelope: { from: NodeId; to: NodeId; term: number }): Message {
  switch (type) {
    case "preVote":
    case "vote":
      return { type, ...envelope, lastIndex: r.varint(), lastTerm: r.varint(), transfer: readFlag(r) };
    case "preVoteResp":
    case "voteResp":
      return { type, ...envelope, reject: readFlag(r) };
    case "append": {
      const prevIndex = r.varint();
      const prevTerm = r.varint();
      const commit = r.varint();
      return { type, ...envelope, prevIndex, prevTerm, commit, entries: readEntries(r, prevIndex) };
    }
    case "appendResp": {
      const index = r.varint();
      if (!readFlag(r)) return { type, ...envelope, index, reject: false };
      return { type, ...envelope, index, reject: true, hintIndex: r.varint(), hintTerm: r.varint() };
    }
    case "heartbeat":
      return { type, ...envelope, commit: r.varint(), round: r.varint() };
    case "heartbeatResp":
      return { type, ...envelope, round: r.varint() };
    case "quiesce":
      return { type, ...envelope, commit: r.varint() };
    case "readIndex":
      return { type, ...envelope, request: r.string() };
    case "readIndexResp":
      return { type, ...envelope, request: r.string(), index: r.varint() };
    case "timeoutNow":
      return { type, ...envelope };
    case "snapshot":
      return { type, ...envelope, snapshot: readSnapshot(r) };
  }
}

function readEntries(r: ByteReader, prevIndex: number): Entry[] {
  const at = r.position;
  const count = readCount(r, ENTRY_BYTES_MIN, "entries");
  if (!Number.isSafeInteger(prevIndex + count)) throw new FormatError(`${count} entries at byte ${at} pass 2^53`);
  const entries: Entry[] = [];
  for (let i = 0; i < count; i++) entries.push(readEntryBody(r, prevIndex + 1 + i, r.varint()));
  return entries;
}

function readSnapshot(r: ByteReader): Snapshot {
  const index = r.varint();
  const term = r.varint();
  const at = r.position;
  if (!readFlag(r)) return { index, term, data: r.bytesCopy() };
  const conf = { voters: readIds(r, "voter"), learners: readIds(r, "learner") };
  const problem = confProblem(conf);
  if (problem !== undefined) throw new FormatError(`the snapshot's configuration at byte ${at}: ${problem}`);
  return { index, term, data: r.bytesCopy(), conf };
}

/** What makes a configuration one no node could hold (Configuration asserts the same). */
function confProblem(conf: ConfState): string | undefined {
  if (conf.voters.length === 0) return "no voter";
  const ids = [...conf.voters, ...conf.learners];
  if (new Set(ids).size !== ids.length) return `a node is listed twice in ${ids.join(",")}`;
  return undefined;
}

function readIds(r: ByteReader, what: string): NodeId[] {
  const count = readCount(r, 1, `${what}s`);
  const ids: NodeId[] = [];
  for (let i = 0; i < count; i++) ids.push(readId(r, what));
  return ids;
}

/** A count of items that take `bytesEach` at least: never more than the bytes left could hold. */
function readCount(r: ByteReader, bytesEach: number, what: string): number {
  const at = r.position;
  const count = r.varint();
  if (count * bytesEach > r.remaining) {
    throw new FormatError(`${count} ${what} at byte ${at} cannot fit in the ${r.remaining} bytes left`);
  }
  return count;
}

function readId(r: ByteReader, what: string): number {
  const at = r.position;
  const id = r.varint();
  if (id === 0) throw new FormatError(`${what} 0 at byte ${at}: ids are positive`);
  return id;
}

function readFlag(r: ByteReader): boolean {
  const at = r.position;
  const flag = r.u8();
  if (flag > 1) throw new FormatError(`flag ${flag} at byte ${at} is neither 0 nor 1`);
  return flag === 1;
}

import { assert } from "../../errors.ts";
import { FormatError } from "../../io/format/bytes.ts";
import { type Delta, type GossipMessage, MESSAGE_KIND_CODES, type MessageKindName } from "./messages.ts";
import { type Digest, type Entry, ID_PATTERN, KEY_PATTERN, KEYS_PER_NODE_MAX } from "./node-state.ts";
import { str8Bytes, varintBytes, WireReader, WireWriter } from "./wire.ts";

/**
 * Gossip datagrams: one message a UDP datagram. Frozen format, version 1.
 *
 *   offset 0   2 bytes  magic "hg" (0x68 0x67)
 *   offset 2   u8       format version: 1
 *   offset 3   u8       kind: 1 Syn, 2 Ack, 3 Ack2 (MESSAGE_KIND_CODES)
 *   offset 4   u16 LE   length of the whole datagram, checksum included
 *   offset 6   str8     cluster id
 *              str8     sender node id
 *              body     by kind, below
 *   length-4   u32 LE   CRC-32 of every byte before it
 *
 *   Syn    u8 flags (bit 0: complete; the others 0) · varint n · n × digest (the sender's first)
 *   Ack    varint n · n × digest (requests) · varint m · m × delta
 *   Ack2   varint m · m × delta
 *   digest str8 node id · varint generation · varint max version
 *   delta  str8 node id · varint generation · varint from version · varint k · k × entry
 *   entry  str8 key · varint version · str8 value
 *
 *   str8 and varint: see wire.ts (a length-prefixed UTF-8 string; an unsigned LEB128 integer)
 *
 * Varints because a datagram is small: a digest of "homekv-42" takes 17 bytes instead of 26
 * (a generation that is a start time in ms takes 6, a version 1-3), so a 1400-byte Syn lists
 * about 80 nodes. decode checks, in this order: size (over the
 * maximum: oversized; under the fixed parts: truncated), magic, version, the length field (more
 * than arrived: truncated), checksum, kind, cluster id, then the body against every rule of the
 * types (ids, keys, deltas of 1 to KEYS_PER_NODE_MAX entries with distinct keys and versions
 * ascending above fromVersion, no node twice in a list, no byte left over). It never throws on
 * bad input: it returns the reason.
 */
export const FORMAT_VERSION = 1;
const MAGIC = [0x68, 0x67];
const FIXED_HEADER_BYTES = 6;
const CHECKSUM_BYTES = 4;
const FLAG_COMPLETE = 1;
/** Datagrams longer than this cannot be sent over UDP (IPv4: 65,535 less the IP and UDP headers). */
export const UDP_PAYLOAD_BYTES_MAX = 65_507;

export type DecodeRejection =
  | "oversized"
  | "truncated"
  | "bad-magic"
  | "bad-version"
  | "checksum"
  | "unknown-kind"
  | "foreign-cluster"
  | "malformed";

export type DecodeResult =
  | { ok: true; message: GossipMessage }
  | { ok: false; rejection: DecodeRejection; detail: string };

export interface DecodeLimits {
  clusterId: string;
  datagramBytesMax: number;
}

export function encode(message: GossipMessage): Uint8Array {
  const size = messageBytes(message);
  if (size > UDP_PAYLOAD_BYTES_MAX) assert(false, () => `a ${size}-byte message does not fit a UDP datagram`);
  const w = new WireWriter(size);
  for (const byte of MAGIC) w.u8(byte);
  w.u8(FORMAT_VERSION);
  w.u8(MESSAGE_KIND_CODES[message.kind]);
  w.u16(size);
  w.str8(message.clusterId);
  w.str8(message.senderId);
  if (message.kind === "syn") {
    w.u8(message.complete ? FLAG_COMPLETE : 0);
    list(w, message.digests, writeDigest);
  } else {
    if (message.kind === "ack") list(w, message.requests, writeDigest);
    list(w, message.deltas, writeDelta);
  }
  w.u32(Bun.hash.crc32(w.bytes.subarray(0, w.written)));
  if (w.written !== size) assert(false, () => `encoded ${w.written} bytes where ${size} were computed`);
  return w.bytes;
}

export function decode(datagram: Uint8Array, limits: DecodeLimits): DecodeResult {
  const size = datagram.byteLength;
  if (size > limits.datagramBytesMax) return reject("oversized", `${size} bytes, over ${limits.datagramBytesMax}`);
  if (size < FIXED_HEADER_BYTES + CHECKSUM_BYTES) return reject("truncated", `only ${size} bytes`);
  if (datagram[0] !== MAGIC[0] || datagram[1] !== MAGIC[1]) return reject("bad-magic", "not a HomeKV gossip datagram");
  if (datagram[2] !== FORMAT_VERSION) return reject("bad-version", `format version ${datagram[2]}`);
  const length = datagram[4]! | (datagram[5]! << 8);
  if (length > size) return reject("truncated", `${size} of ${length} bytes`);
  if (length < size) return reject("malformed", `${size - length} bytes after the end`);
  const stored =
    (datagram[size - 4]! | (datagram[size - 3]! << 8) | (datagram[size - 2]! << 16) | (datagram[size - 1]! << 24)) >>>
    0;
  if (stored !== Bun.hash.crc32(datagram.subarray(0, size - CHECKSUM_BYTES))) {
    return reject("checksum", "checksum mismatch");
  }
  const kind = kindOf(datagram[3]!);
  if (kind === undefined) return reject("unknown-kind", `kind ${datagram[3]}`);
  try {
    const r = new WireReader(datagram, FIXED_HEADER_BYTES, size - CHECKSUM_BYTES);
    const clusterId = readId(r);
    if (clusterId !== limits.clusterId) return reject("foreign-cluster", `cluster ${clusterId}`);
    const message = readBody(r, kind, clusterId, readId(r));
    if (r.remaining !== 0) throw new FormatError(`${r.remaining} bytes left over`);
    return { ok: true, message };
  } catch (error) {
    if (error instanceof FormatError) return reject("malformed", error.message);
    throw error;
  }
}

// Sizes, so that builders fill a datagram without encoding twice.

export function messageOverheadBytes(clusterId: string, senderId: string): number {
  // Fixed header, the two ids, the largest count varints a datagram can need (2 each), the flags.
  return FIXED_HEADER_BYTES + str8Bytes(clusterId) + str8Bytes(senderId) + 2 + 2 + 1 + CHECKSUM_BYTES;
}

export function digestBytes(digest: Digest): number {
  return str8Bytes(digest.nodeId) + varintBytes(digest.generation) + varintBytes(digest.maxVersion);
}

export function deltaBytes(delta: Delta): number {
  let bytes =
    str8Bytes(delta.nodeId) +
    varintBytes(delta.generation) +
    varintBytes(delta.fromVersion) +
    varintBytes(delta.entries.length);
  for (const entry of delta.entries) bytes += entryBytes(entry);
  return bytes;
}

export function entryBytes(entry: Entry): number {
  return str8Bytes(entry.key) + varintBytes(entry.version) + str8Bytes(entry.value);
}

function messageBytes(message: GossipMessage): number {
  let bytes = FIXED_HEADER_BYTES + str8Bytes(message.clusterId) + str8Bytes(message.senderId) + CHECKSUM_BYTES;
  if (message.kind === "syn") bytes += 1 + listBytes(message.digests, digestBytes);
  if (message.kind === "ack") bytes += listBytes(message.requests, digestBytes);
  if (message.kind !== "syn") bytes += listBytes(message.deltas, deltaBytes);
  return bytes;
}

function listBytes<T>(items: readonly T[], bytesOf: (item: T) => number): number {
  return items.reduce((sum, item) => sum + bytesOf(item), varintBytes(items.length));
}

function readBody(r: WireReader, kind: MessageKindName, clusterId: string, senderId: string): GossipMessage {
  if (kind === "syn") {
    const flags = r.u8();
    if ((flags & ~FLAG_COMPLETE) !== 0) throw new FormatError(`unknown flags ${flags}`);
    const digests = readList(r, readDigest);
    if (digests[0]?.nodeId !== senderId) throw new FormatError("a syn must start with its sender's digest");
    return { kind, clusterId, senderId, complete: (flags & FLAG_COMPLETE) !== 0, digests };
  }
  if (kind === "ack") {
    const requests = readList(r, readDigest);
    return { kind, clusterId, senderId, requests, deltas: readList(r, readDelta) };
  }
  return { kind, clusterId, senderId, deltas: readList(r, readDelta) };
}

const KIND_BY_CODE = new Map(Object.entries(MESSAGE_KIND_CODES).map(([name, code]) => [code, name as MessageKindName]));

function kindOf(code: number): MessageKindName | undefined {
  return KIND_BY_CODE.get(code);
}

function writeDigest(w: WireWriter, digest: Digest): void {
  w.str8(digest.nodeId);
  w.varint(digest.generation);
  w.varint(digest.maxVersion);
}

function readDigest(r: WireReader): Digest {
  const digest = { nodeId: readId(r), generation: r.varint(), maxVersion: r.varint() };
  if (digest.generation === 0 && digest.maxVersion !== 0)
    throw new FormatError("a digest of generation 0 must have version 0");
  return digest;
}

function writeDelta(w: WireWriter, delta: Delta): void {
  w.str8(delta.nodeId);
  w.varint(delta.generation);
  w.varint(delta.fromVersion);
  w.varint(delta.entries.length);
  for (const entry of delta.entries) {
    w.str8(entry.key);
    w.varint(entry.version);
    w.str8(entry.value);
  }
}

function readDelta(r: WireReader): Delta {
  const nodeId = readId(r);
  const generation = r.varint();
  const fromVersion = r.varint();
  const count = r.varint();
  if (generation === 0) throw new FormatError("a delta of generation 0");
  if (count === 0 || count > KEYS_PER_NODE_MAX) throw new FormatError(`a delta of ${count} entries`);
  const entries: Entry[] = [];
  const keys = new Set<string>();
  let previous = fromVersion;
  for (let i = 0; i < count; i++) {
    const entry = { key: r.str8(), version: r.varint(), value: r.str8() };
    if (!KEY_PATTERN.test(entry.key) || keys.has(entry.key))
      throw new FormatError(`bad or repeated key ${JSON.stringify(entry.key)}`);
    if (entry.version <= previous) throw new FormatError(`version ${entry.version} not above ${previous}`);
    keys.add(entry.key);
    previous = entry.version;
    entries.push(entry);
  }
  return { nodeId, generation, fromVersion, entries };
}

function list<T>(w: WireWriter, items: readonly T[], write: (w: WireWriter, item: T) => void): void {
  w.varint(items.length);
  for (const item of items) write(w, item);
}

/** A list of items that each name a node, no node twice. */
function readList<T extends { nodeId: string }>(r: WireReader, read: (r: WireReader) => T): T[] {
  const count = r.varint();
  // Each item takes at least 3 bytes: a count beyond that is a lie, refused before any allocation.
  if (count * 3 > r.remaining) throw new FormatError(`${count} items cannot fit in ${r.remaining} bytes`);
  const items: T[] = [];
  const seen = new Set<string>();
  for (let i = 0; i < count; i++) {
    const item = read(r);
    if (seen.has(item.nodeId)) throw new FormatError(`node ${item.nodeId} twice in one list`);
    seen.add(item.nodeId);
    items.push(item);
  }
  return items;
}

function readId(r: WireReader): string {
  const id = r.str8();
  if (!ID_PATTERN.test(id)) throw new FormatError(`invalid id ${JSON.stringify(id)}`);
  return id;
}

function reject(rejection: DecodeRejection, detail: string): DecodeResult {
  return { ok: false, rejection, detail };
}

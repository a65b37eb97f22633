import { type ByteReader, ByteWriter, FormatError, readVersioned } from "../../io/format/bytes.ts";
import type { NodeId } from "../raft/types.ts";

/**
 * The bodies of the cluster's peer RPCs (the methods below, over the peer RPC layer). Frozen
 * format, version 1: codes are never renumbered, a change of layout is a new version. Integers are
 * varints (bytes.ts) unless marked u8; a string is u32 length · UTF-8.
 *
 *   cluster.member-status   request: u8 version
 *                           answer:  u8 version · string role · varint term · varint leader ·
 *                                    varint commit · varint applied · varint lastIndex ·
 *                                    string grpcAddress · varint n · n × (varint id · varint match)
 *                                    (the progress of each follower: the leader's only; n is 0 elsewhere)
 *   cluster.change          request: u8 version · u8 op (1 add, 2 remove, 3 transfer leadership) ·
 *                                    string name · string peerAddress (empty unless add)
 *                           answer:  u8 version · varint index (the asker waits until it has
 *                                    applied this far before it reports the members after the change)
 */
export const MEMBER_STATUS_METHOD = "cluster.member-status";
export const CHANGE_METHOD = "cluster.change";
const VERSION = 1;
/** Followers a leader reports progress for: the voters and learners a group may hold, with room. */
const PROGRESS_ENTRIES_MAX = 64;

/** What a member says of itself when asked. */
export interface MemberStatus {
  readonly role: string;
  readonly term: number;
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly grpcAddress: string;
  /** The leader's match index of each follower; empty on a member that does not lead. */
  readonly progress: ReadonlyMap<NodeId, number>;
}

export type ChangeRequest =
  | { readonly op: "add"; readonly name: string; readonly peerAddress: string }
  | { readonly op: "remove" | "transfer"; readonly name: string };

const OP_CODES = { add: 1, remove: 2, transfer: 3 } as const;
const OPS = new Map(Object.entries(OP_CODES).map(([op, code]) => [code as number, op as ChangeRequest["op"]]));

export function encodeStatusRequest(): Uint8Array {
  return Uint8Array.of(VERSION);
}

export function decodeStatusRequest(bytes: Uint8Array): void {
  whole(bytes, () => {});
}

export function encodeMemberStatus(status: MemberStatus): Uint8Array {
  const w = new ByteWriter(64).u8(VERSION).string(status.role);
  w.varint(status.term).varint(status.leader).varint(status.commit).varint(status.applied).varint(status.lastIndex);
  w.string(status.grpcAddress).varint(status.progress.size);
  for (const [id, match] of status.progress) w.varint(id).varint(match);
  return w.written().slice();
}

export function decodeMemberStatus(bytes: Uint8Array): MemberStatus {
  return whole(bytes, (r) => {
    const role = r.string();
    const [term, leader, commit, applied, lastIndex] = [r.varint(), r.varint(), r.varint(), r.varint(), r.varint()];
    const grpcAddress = r.string();
    const count = r.varint();
    if (count > PROGRESS_ENTRIES_MAX)
      throw new FormatError(`progress of ${count} followers (at most ${PROGRESS_ENTRIES_MAX})`);
    const progress = new Map<NodeId, number>();
    for (let i = 0; i < count; i++) progress.set(r.varint(), r.varint());
    return { role, term, leader, commit, applied, lastIndex, grpcAddress, progress };
  });
}

export function encodeChangeRequest(request: ChangeRequest): Uint8Array {
  const w = new ByteWriter(64).u8(VERSION).u8(OP_CODES[request.op]).string(request.name);
  w.string(request.op === "add" ? request.peerAddress : "");
  return w.written().slice();
}

export function decodeChangeRequest(bytes: Uint8Array): ChangeRequest {
  return whole(bytes, (r) => {
    const at = r.position;
    const op = OPS.get(r.u8());
    if (op === undefined) throw new FormatError(`unknown change at byte ${at}`);
    const name = r.string();
    const peerAddress = r.string();
    return op === "add" ? { op, name, peerAddress } : { op, name };
  });
}

export function encodeChangeAnswer(index: number): Uint8Array {
  return new ByteWriter(16).u8(VERSION).varint(index).written().slice();
}

export function decodeChangeAnswer(bytes: Uint8Array): number {
  return whole(bytes, (r) => r.varint());
}

/** Reads a versioned body to its last byte. */
function whole<T>(bytes: Uint8Array, read: (r: ByteReader) => T): T {
  return readVersioned(bytes, VERSION, "a cluster RPC body", read);
}

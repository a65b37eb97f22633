import { createHash } from "node:crypto";
import type { NodeId } from "../raft/types.ts";

/**
 * A member's Raft id, from its name: the first 6 bytes of the SHA-256 of the UTF-8 name, read
 * big-endian (1 to 2^48 - 1; a hash of 0 counts as 1, as 0 means "none"). Frozen: the ids are in
 * every member's log and hard state, so every member, at every start and in every version, must
 * derive the same id from a name. Two names with the same id cannot both be members: an add that
 * would make them so is refused (the chance, for 7 members, is about 1 in 10^13).
 */
export function raftIdOf(name: string): NodeId {
  const digest = createHash("sha256").update(name, "utf8").digest();
  return digest.readUIntBE(0, 6) || 1;
}

/** Node ids are positive integers; 0 means "none" (no vote, no known leader). */
export type NodeId = number;
export const NONE: NodeId = 0;

/** One log entry. `data` null is the empty entry a new leader appends to commit its term. */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array | null;
}

/** What must be on disk before any message that depends on it is sent (Raft's persistent state). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

export type MessageType =
  | "preVote"
  | "preVoteResp"
  | "vote"
  | "voteResp"
  | "append"
  | "appendResp"
  | "heartbeat"
  | "heartbeatResp"
  | "readIndex"
  | "readIndexResp"
  | "timeoutNow";

/**
 * Every message between nodes. Fields not used by a type stay 0 / empty.
 * - append: `index`/`logTerm` locate the entry before `entries`; `commit` is the leader's.
 * - appendResp: `index` is the follower's last matching index (accepted) or the probe it rejects;
 *   a rejection carries `hintIndex` and `hintTerm` for the leader's fast back-off.
 * - (pre)vote: `index`/`logTerm` are the candidate's last entry; `force` skips the leader lease
 *   (a leadership transfer).
 * - heartbeat(Resp) and readIndex(Resp): `context` identifies a read; readIndexResp's `index` is the
 *   read index.
 */
export interface Message {
  readonly type: MessageType;
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
  readonly index?: number;
  readonly logTerm?: number;
  readonly entries?: readonly Entry[];
  readonly commit?: number;
  readonly reject?: boolean;
  readonly hintIndex?: number;
  readonly hintTerm?: number;
  readonly context?: number;
  readonly force?: boolean;
}

/** A read that is linearizable once the state machine has applied up to `index`. */
export interface ReadState {
  readonly index: number;
  readonly context: number;
}

/**
 * What the caller must do, in this order: persist `hardState` (if any) and `entries` (appending
 * them replaces any conflicting suffix), then send `messages`, then apply `committed` to the state
 * machine and serve `readStates`, then call `advance()`.
 */
export interface Ready {
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committed: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

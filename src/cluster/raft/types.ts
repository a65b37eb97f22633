/** Node ids are positive integers; 0 means "none" (no vote, no known leader). */
export type NodeId = number;
export const NONE: NodeId = 0;

/**
 * A change of the group's members, one server at a time: a learner receives the log but does not
 * vote; a voter counts in every quorum; removal takes a node out of both.
 */
export interface ConfChange {
  readonly type: "addLearner" | "addVoter" | "remove";
  readonly node: NodeId;
}

/** Who votes and who only learns. */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
}

/**
 * One log entry. `data` null is the empty entry a new leader appends to commit its term, or a
 * configuration change (`conf`), which takes effect when it is applied.
 */
export interface Entry {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array | null;
  readonly conf?: ConfChange;
}

/**
 * The state machine at `index` (whose entry had `term`), standing for every entry up to it: what a
 * compacted log keeps instead of those entries, and what a leader sends a follower that needs them.
 */
export interface Snapshot {
  readonly index: number;
  readonly term: number;
  readonly data: Uint8Array;
  /** The members at `index`; undefined for the empty snapshot (the group's initial members apply). */
  readonly conf?: ConfState;
}

export const EMPTY_SNAPSHOT: Snapshot = { index: 0, term: 0, data: new Uint8Array(0) };

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
  | "timeoutNow"
  | "snapshot";

/**
 * Every message between nodes. Fields not used by a type stay 0 / empty.
 * - append: `index`/`logTerm` locate the entry before `entries`; `commit` is the leader's.
 * - appendResp: `index` is the follower's last matching index (accepted) or the probe it rejects;
 *   a rejection carries `hintIndex` and `hintTerm` for the leader's fast back-off.
 * - (pre)vote: `index`/`logTerm` are the candidate's last entry; `force` skips the leader lease
 *   (a leadership transfer).
 * - snapshot: `snapshot` replaces the follower's log up to its index (InstallSnapshot); answered
 *   with an appendResp.
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
  readonly snapshot?: Snapshot;
}

/** A read that is linearizable once the state machine has applied up to `index`. */
export interface ReadState {
  readonly index: number;
  readonly context: number;
}

/**
 * What the caller must do, in this order: install `snapshot` (if any) in storage and in the state
 * machine, persist `hardState` (if any) and `entries` (appending them replaces any conflicting
 * suffix), then send `messages`, then apply `committed` to the state machine and serve
 * `readStates`, then call `advance()`.
 */
export interface Ready {
  readonly snapshot: Snapshot | undefined;
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  readonly messages: readonly Message[];
  readonly committed: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

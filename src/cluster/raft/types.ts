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
  /**
   * Who the node is, when the change says (an add by name): every member learns from the log where
   * to reach it. The core ignores it; the replication layer keeps a directory of it.
   */
  readonly member?: MemberAddress;
}

/** A member's name (its --node-id) and where its peers reach it (its --peer-port). */
export interface MemberAddress {
  readonly name: string;
  readonly peerAddress: string;
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

interface Envelope {
  readonly from: NodeId;
  readonly to: NodeId;
  readonly term: number;
}

/** A (pre-)vote request: the candidate's last entry; `transfer` skips the leader lease (§3.10). */
export interface VoteRequest extends Envelope {
  readonly type: "preVote" | "vote";
  readonly lastIndex: number;
  readonly lastTerm: number;
  readonly transfer: boolean;
}

export interface VoteResponse extends Envelope {
  readonly type: "preVoteResp" | "voteResp";
  readonly reject: boolean;
}

/** Entries after (prevIndex, prevTerm), and the leader's commit index. */
export interface Append extends Envelope {
  readonly type: "append";
  readonly prevIndex: number;
  readonly prevTerm: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
}

/**
 * The answer to an append or a snapshot. Accepted: the follower's log matches the leader's up to
 * `index`. Rejected: it lacks the entry at `index` (the append's prevIndex); `hintIndex` and
 * `hintTerm` say where the logs may first agree (the fast back-off of §5.3).
 */
export type AppendResponse = Envelope & { readonly type: "appendResp"; readonly index: number } & (
    | { readonly reject: false }
    | { readonly reject: true; readonly hintIndex: number; readonly hintTerm: number }
  );

/**
 * A leader's heartbeat: the commit index the follower may take (never past what it matches), and the
 * read round it confirms leadership for (0: none).
 */
export interface Heartbeat extends Envelope {
  readonly type: "heartbeat";
  readonly commit: number;
  readonly round: number;
}

/**
 * A leader's last heartbeat before its idle group stops ticking (quiescence): the commit index, as
 * a heartbeat's. Not answered; a follower whose log ends there stops ticking too, until a message
 * or a call of its own (a proposal, a read, the leader found unreachable) wakes it.
 */
export interface Quiesce extends Envelope {
  readonly type: "quiesce";
  readonly commit: number;
}

export interface HeartbeatResponse extends Envelope {
  readonly type: "heartbeatResp";
  readonly round: number;
}

/** A follower asks the leader for a read index on behalf of its read `request`. */
export interface ReadIndexRequest extends Envelope {
  readonly type: "readIndex";
  readonly request: ReadRequestId;
}

export interface ReadIndexResponse extends Envelope {
  readonly type: "readIndexResp";
  readonly request: ReadRequestId;
  readonly index: number;
}

/** The leader hands over: campaign now (leadership transfer). */
export interface TimeoutNow extends Envelope {
  readonly type: "timeoutNow";
}

/** InstallSnapshot: `snapshot` replaces the follower's log up to its index; answered with an appendResp. */
export interface SnapshotMessage extends Envelope {
  readonly type: "snapshot";
  readonly snapshot: Snapshot;
}

/** Every message between nodes. */
export type Message =
  | VoteRequest
  | VoteResponse
  | Append
  | AppendResponse
  | Heartbeat
  | HeartbeatResponse
  | Quiesce
  | ReadIndexRequest
  | ReadIndexResponse
  | TimeoutNow
  | SnapshotMessage;

export type MessageType = Message["type"];

/**
 * Names one linearizable read, unique across nodes and restarts: the node's id, a random nonce
 * drawn when its core was made, and a counter. A late answer meant for another node, or for this
 * node before a restart, can never be taken for this read's.
 */
export type ReadRequestId = string;

/** A read that is linearizable once the state machine has applied up to `index`. */
export interface ReadState {
  readonly index: number;
  readonly request: ReadRequestId;
}

/** What the leader learned of a snapshot it sent (the transport reports it: etcd's ReportSnapshot). */
export type SnapshotOutcome = "finished" | "failed";

/**
 * What the caller must do, in this order: install `snapshot` (if any) in storage and in the state
 * machine, persist `hardState` (if any) and `entries` (appending them replaces any conflicting
 * suffix) — synced to disk when `mustSync` —, then send `messages`, then apply `committed` to the
 * state machine and serve `readStates`, then call `advance(ready)` with this same Ready. A second
 * `ready()` before that `advance` is a bug and throws.
 */
export interface Ready {
  readonly snapshot: Snapshot | undefined;
  readonly hardState: HardState | undefined;
  readonly entries: readonly Entry[];
  /**
   * Whether what is persisted must reach the disk before the messages go (etcd's MustSync): a
   * snapshot (its acknowledgement is among the messages), new entries, or a new term or vote. A
   * commit index alone need not be synced: it is learned again from the leader after a crash.
   */
  readonly mustSync: boolean;
  readonly messages: readonly Message[];
  readonly committed: readonly Entry[];
  readonly readStates: readonly ReadState[];
}

export type Role = "follower" | "preCandidate" | "candidate" | "leader";

/** What a node says of itself (etcd's Status): read-only, a copy. */
export interface Status {
  readonly id: NodeId;
  readonly role: Role;
  readonly term: number;
  readonly vote: NodeId;
  /** NONE when not known. */
  readonly leader: NodeId;
  readonly commit: number;
  readonly applied: number;
  readonly lastIndex: number;
  readonly lastTerm: number;
  /** The index the log starts after (what its snapshot stands for). */
  readonly snapshotIndex: number;
  /** A leader's view of each other member's log (empty elsewhere). */
  readonly progress: ReadonlyMap<NodeId, { readonly match: number; readonly next: number; readonly state: string }>;
}

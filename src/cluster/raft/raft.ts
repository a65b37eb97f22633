import { assert } from "../../errors.ts";
import { ConfigTracker, type Configuration } from "./configuration.ts";
import { type FlowLimits, Progress } from "./progress.ts";
import { RaftLog } from "./raft-log.ts";
import { ReadQueue } from "./read-queue.ts";
import type { RaftStorage } from "./storage.ts";
import type {
  Append,
  AppendResponse,
  ConfChange,
  ConfState,
  Entry,
  HardState,
  HeartbeatResponse,
  Message,
  ReadRequestId,
  ReadState,
  Ready,
  Role,
  SnapshotMessage,
  SnapshotOutcome,
  Status,
  VoteRequest,
  VoteResponse,
} from "./types.ts";
import { NONE, type NodeId } from "./types.ts";

/** A follower that lost the leader's connection campaigns within this many ticks (leaderUnreachable). */
const LEADER_LOST_SPREAD_TICKS = 5;
/** A message as the core writes it; `from` is filled in when it is queued. */
type Outgoing = Message extends infer M ? (M extends Message ? Omit<M, "from"> : never) : never;

export interface RaftOptions {
  id: NodeId;
  /**
   * The group's first voters (the same list on every node, this one included or not: a node
   * started to join waits until a leader adds it). Later members come from the log or a snapshot.
   */
  voters: readonly NodeId[];
  storage: RaftStorage;
  /** A seeded PRNG (src/random.ts): the randomized election timeouts come from it. */
  random: () => number;
  /** Ticks without a leader before a follower campaigns: a random value in [this, 2 × this). */
  electionTicks?: number;
  /** Ticks between a leader's heartbeats; well under electionTicks. */
  heartbeatTicks?: number;
  /** Entries per append message at most. */
  entriesPerMessageMax?: number;
  /** Entry bytes per append message at most (at least one entry always goes). */
  messageBytesMax?: number;
  /** Appends in flight to one follower at most. */
  inflightMessagesMax?: number;
  /** Entry bytes in flight to one follower at most. */
  inflightBytesMax?: number;
  /**
   * An idle group stops ticking (quiescence, for a process hosting many groups): no heartbeats, no
   * election timers, until a message or a call wakes it. The caller must then tell a follower when
   * its leader is unreachable (leaderUnreachable: a closed connection, the failure detector), or a
   * quiet group whose leader died would never elect another.
   */
  quiesce?: boolean;
  /**
   * Votes (and pre-votes) are granted only while this node is a member (voter or learner) of its
   * own configuration. For a node whose replica of a group may be made again, empty, under the
   * same id after it was removed (a partitioned node's replicas and meta replica: ids are the
   * nodes' name hashes): a member behind the removal still counts the old replica a voter, and the
   * new one, knowing nothing, would elect it with a majority of a configuration long past — two
   * leaders committing different entries at one index (the partitioned simulation found it). Made
   * again, it votes once its log holds its new addition, which comes after its removal. A learner
   * promoted that has not received its promotion yet still votes (etcd's learners do too): it may
   * be needed for a quorum of the new configuration.
   */
  votesOnlyAsMember?: boolean;
}

export const RAFT_DEFAULTS = {
  electionTicks: 10,
  heartbeatTicks: 1,
  entriesPerMessageMax: 64,
  messageBytesMax: 1024 * 1024,
  inflightMessagesMax: 256,
  inflightBytesMax: 16 * 1024 * 1024,
};

/**
 * The Raft consensus core (Ongaro & Ousterhout), in the style of etcd's raft package: a synchronous
 * state machine with no clock, network, disk or randomness of its own. The caller feeds it ticks,
 * messages and proposals, and collects a Ready (ready()), which says what to persist, send and apply,
 * then calls advance(). With PreVote and CheckQuorum: a node cut off from the cluster cannot raise
 * the term when it returns, and a leader that loses its quorum steps down.
 */
export class Raft {
  readonly id: NodeId;
  private currentRole: Role = "follower";
  private currentTerm: number;
  private vote: NodeId;
  private currentLeader: NodeId = NONE;
  private readonly log: RaftLog;
  private readonly storage: RaftStorage;

  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly entriesPerMessageMax: number;
  private readonly messageBytesMax: number;
  private readonly flow: FlowLimits;
  private readonly random: () => number;
  /** Drawn once per core: with the id and a counter it makes read request ids unique across restarts. */
  private readonly readNonce: string;
  private readCounter = 0;
  /** This node's reads forwarded to the leader of this term, not answered yet. */
  private forwardedReads = new Set<ReadRequestId>();
  /** The Ready handed out and not advanced yet. */
  private readyOut: Ready | undefined;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private readonly mayQuiesce: boolean;
  private readonly votesOnlyAsMember: boolean;
  /** Ticks are ignored: the group was idle (see RaftOptions.quiesce). */
  private quiet = false;
  /** A leader's replicas its host takes to be down (updateDown): its group may go quiet without them. */
  private readonly down = new Set<NodeId>();
  private randomizedElectionTicks = 0;
  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private transferee: NodeId = NONE;
  private readonly confs: ConfigTracker;
  private readonly reads = new ReadQueue();
  private outbox: Message[] = [];
  /**
   * The leader owes every follower an append: new entries of its own, or a commit index that moved.
   * Sent when the next Ready is taken, not at each proposal or acknowledgement, so the proposals of
   * one turn go to each follower as one message (not one message per proposal) and the commit moved
   * by many acknowledgements is told once. Nothing waits longer for it: a Ready's messages only leave
   * when the Ready is taken anyway.
   */
  private appendsOwed = false;
  private readStates: ReadState[] = [];
  private persisted: HardState;

  constructor(options: RaftOptions) {
    assert(options.id !== NONE, "node ids are positive");
    this.id = options.id;
    this.confs = new ConfigTracker(options.storage.snapshot().conf ?? { voters: options.voters, learners: [] });
    this.electionTicks = options.electionTicks ?? RAFT_DEFAULTS.electionTicks;
    this.heartbeatTicks = options.heartbeatTicks ?? RAFT_DEFAULTS.heartbeatTicks;
    assert(this.heartbeatTicks < this.electionTicks, "heartbeatTicks must be less than electionTicks");
    this.entriesPerMessageMax = options.entriesPerMessageMax ?? RAFT_DEFAULTS.entriesPerMessageMax;
    this.messageBytesMax = options.messageBytesMax ?? RAFT_DEFAULTS.messageBytesMax;
    this.flow = {
      inflightMessagesMax: options.inflightMessagesMax ?? RAFT_DEFAULTS.inflightMessagesMax,
      inflightBytesMax: options.inflightBytesMax ?? RAFT_DEFAULTS.inflightBytesMax,
    };
    this.random = options.random;
    this.mayQuiesce = options.quiesce ?? false;
    this.votesOnlyAsMember = options.votesOnlyAsMember ?? false;
    this.readNonce = Math.floor(this.random() * 2 ** 48).toString(36);
    this.storage = options.storage;
    this.log = new RaftLog(options.storage);
    this.confs.observe(this.log.slice(this.log.snapshotIndex() + 1, this.log.lastIndex() + 1), this.log.lastIndex());
    const state = options.storage.hardState();
    this.currentTerm = state.term;
    this.vote = state.vote;
    this.persisted = state;
    this.resetElectionTimer();
  }

  private get config(): Configuration {
    return this.confs.current;
  }

  private get quorum(): number {
    return this.config.quorum;
  }

  /** Voters other than this node: who a candidate asks. */
  private get peers(): NodeId[] {
    return this.config.voterIds().filter((id) => id !== this.id);
  }

  /** Members other than this node: who a leader replicates to. */
  private get replicas(): NodeId[] {
    return this.config.replicasExcept(this.id);
  }

  get role(): Role {
    return this.currentRole;
  }

  get term(): number {
    return this.currentTerm;
  }

  /** The index of the last entry in this node's log (where a proposal it just took went). */
  get lastIndex(): number {
    return this.log.lastIndex();
  }

  /** The leader this node follows, itself when it leads; NONE when it knows of none. */
  get leader(): NodeId {
    return this.currentLeader;
  }

  /** A copy of what this node knows of itself and, when it leads, of its followers. */
  status(): Status {
    return {
      id: this.id,
      role: this.currentRole,
      term: this.currentTerm,
      vote: this.vote,
      leader: this.currentLeader,
      commit: this.log.committed,
      applied: this.log.applied,
      lastIndex: this.log.lastIndex(),
      lastTerm: this.log.lastTerm(),
      snapshotIndex: this.log.snapshotIndex(),
      progress: new Map(
        [...this.progress]
          .filter(([id]) => id !== this.id)
          .map(([id, p]) => [id, { match: p.match, next: p.next, state: p.state }]),
      ),
    };
  }

  /** The index of the newest configuration change in the log (0: none after its snapshot). */
  get confIndex(): number {
    return this.confs.lastChangeIndex;
  }

  /** The term of entry `index`, from the snapshot's index to the last index (tests, and the caller's checks). */
  termAt(index: number): number {
    return this.log.term(index);
  }

  /**
   * Whether a leader's snapshot was taken and waits to be installed (the next Ready carries it):
   * the log restarts at it, and the entries before it (their terms) are no longer known here.
   */
  get installingSnapshot(): boolean {
    return this.log.pendingSnapshot !== undefined;
  }

  /**
   * Learners and nodes not in the group never campaign. A node whose removal is in its log but not
   * known to be committed still may: the voters of the committed configuration may need it to lead
   * long enough to commit (or lose) that removal, since its longer log can make it the only one they
   * can elect.
   */
  private mayCampaign(): boolean {
    return this.config.isVoter(this.id) || this.confs.at(this.log.committed).isVoter(this.id);
  }

  /**
   * The members as of entry `index` (default: the last, what this node goes by now). A snapshot at
   * the applied index must record the members as of that index, not a change appended after it.
   */
  confState(index = this.log.lastIndex()): ConfState {
    return (index >= this.log.lastIndex() ? this.config : this.confs.at(index)).state();
  }

  // --- inputs ---

  /** Whether this node ignores ticks now: its group was idle when the leader last heard from everyone. */
  get quiesced(): boolean {
    return this.quiet;
  }

  tick(): void {
    if (this.quiet) return;
    if (this.currentRole === "leader") return this.tickLeader();
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTicks && this.mayCampaign()) this.campaign("preVote");
  }

  /**
   * Which replicas the host takes to be down now (a closed connection, its failure detector), read
   * by a leader at each of the host's ticks. A leader lets its idle group go quiet without the ones
   * down, as long as a quorum of voters answers (else one dead member keeps all its groups awake),
   * and wakes when one of them is back, to catch it up: the returning member got no quiesce and is
   * ticking. Only liveness depends on it; a wrong answer costs ticks, never safety.
   */
  updateDown(isDown: (id: NodeId) => boolean): void {
    if (this.currentRole !== "leader") return;
    for (const id of this.replicas) {
      const down = isDown(id);
      if (down === this.down.has(id)) continue;
      if (down) this.down.add(id);
      else {
        this.down.delete(id);
        this.wake();
      }
    }
  }

  /** Starts an election now, as if the election timeout had passed (still through PreVote). */
  campaignNow(): void {
    this.wake();
    if (this.currentRole !== "leader" && this.mayCampaign()) this.campaign("preVote");
  }

  /**
   * The transport lost its connection to the leader (its process died, most often). The leader is
   * forgotten, which gives up its lease (a vote request is no longer ignored), and this node
   * campaigns within the next one to five ticks instead of a whole election timeout. Only liveness
   * changes: an election is always safe, and one that follows a connection that merely flapped
   * fails at PreVote, since the others still hear from the leader and keep its lease. The spread
   * of ticks keeps the followers of a dead leader from campaigning in the same one.
   */
  leaderUnreachable(): void {
    if (this.currentRole !== "follower" || this.currentLeader === NONE) return;
    this.wake();
    this.currentLeader = NONE;
    const soon = this.randomizedElectionTicks - 1 - Math.floor(this.random() * LEADER_LOST_SPREAD_TICKS);
    this.electionElapsed = Math.max(this.electionElapsed, soon);
  }

  /** Proposes data for the log; false when this node cannot take it now (not the leader, or transferring). */
  propose(data: Uint8Array): boolean {
    return this.proposeAll([data]);
  }

  /** Proposes entries together (consecutive indexes), all or none; false as `propose`. */
  proposeAll(data: readonly Uint8Array[]): boolean {
    if (this.currentRole !== "leader" || this.transferee !== NONE || !this.config.isVoter(this.id)) return false;
    this.wake();
    if (data.length > 0) this.appendOwn(data);
    return true;
  }

  /**
   * Proposes a change of members, one server at a time; false when this node is not the leader, an
   * earlier change is not committed yet (two in flight could leave two disjoint majorities), or no
   * entry of this leader's term has committed yet. The last rule closes the hole in single-server
   * changes Ongaro found (raft-dev, 2015): a change left uncommitted by an earlier leader may still
   * be in another configuration's majority; committing an entry of its own term first makes this
   * leader's log — and configuration — the one every future leader descends from. (etcd reaches the
   * same by setting pendingConfIndex to the last index when it becomes leader.) Also false for a
   * change that would leave no voter.
   */
  proposeConfChange(change: ConfChange): boolean {
    if (this.currentRole !== "leader" || this.transferee !== NONE) return false;
    if (this.confs.lastChangeIndex > this.log.committed || this.log.term(this.log.committed) !== this.currentTerm)
      return false;
    // The last voter may be neither removed nor demoted to a learner: a group without voters has no
    // quorum to commit anything again, that change included (etcd: "removed all voters").
    if (change.type !== "addVoter" && this.config.isVoter(change.node) && this.config.voterIds().length === 1)
      return false;
    this.wake();
    this.appendOwn([null], change);
    return true;
  }

  /**
   * Asks for a linearizable read. Returns the request's id, unique across nodes and restarts; a
   * ReadState with it comes out of a later Ready, or never (leadership lost: the caller times out and
   * asks again). Undefined when no leader is known: ask again later.
   */
  readIndex(): ReadRequestId | undefined {
    if (this.currentRole !== "leader" && this.currentLeader === NONE) return undefined;
    this.wake();
    const request = `${this.id}.${this.readNonce}.${++this.readCounter}`;
    if (this.currentRole === "leader") this.leaderRead(this.id, request);
    else {
      this.forwardedReads.add(request);
      this.send({ type: "readIndex", to: this.currentLeader, term: this.currentTerm, request });
    }
    return request;
  }

  /**
   * Hands leadership to `to` once its log has caught up (§3.10 of the thesis); leader only. The
   * transfer gets one whole election timeout from now, then is given up.
   */
  transferLeadership(to: NodeId): void {
    if (this.currentRole !== "leader" || to === this.id || !this.config.isVoter(to) || this.transferee === to) return;
    this.wake();
    this.transferee = to;
    this.electionElapsed = 0;
    const progress = this.progress.get(to)!;
    if (progress.match === this.log.lastIndex()) this.send({ type: "timeoutNow", to, term: this.currentTerm });
    else this.sendAppend(to);
  }

  /** What the transport learned of a snapshot sent to `to` (etcd's ReportSnapshot); leader only. */
  reportSnapshot(to: NodeId, outcome: SnapshotOutcome): void {
    if (this.currentRole !== "leader") return;
    this.progress.get(to)?.snapshotReported(outcome === "finished");
  }

  step(m: Message): void {
    if (this.isNews(m)) this.wake();
    if (m.term > this.currentTerm) {
      // CheckQuorum's lease: while a leader is heard from, a vote request is a disruption (a node
      // back from a partition), not an election; a transfer is the exception.
      if (
        (m.type === "vote" || m.type === "preVote") &&
        !m.transfer &&
        this.currentLeader !== NONE &&
        this.electionElapsed < this.electionTicks
      )
        return;
      const futureTerm = m.type === "preVote" || (m.type === "preVoteResp" && !m.reject);
      if (!futureTerm) {
        const fromLeader =
          m.type === "append" ||
          m.type === "heartbeat" ||
          m.type === "quiesce" ||
          m.type === "snapshot" ||
          m.type === "timeoutNow";
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.currentTerm) {
      // A stale leader learns the new term from the answer and steps down; other old messages are dropped.
      if (m.type === "append" || m.type === "heartbeat" || m.type === "quiesce" || m.type === "snapshot")
        this.send({
          type: "appendResp",
          to: m.from,
          term: this.currentTerm,
          index: 0,
          reject: true,
          hintIndex: 0,
          hintTerm: 0,
        });
      else if (m.type === "preVote")
        this.send({ type: "preVoteResp", to: m.from, term: this.currentTerm, reject: true });
      return;
    }

    switch (m.type) {
      case "vote":
      case "preVote":
        return this.handleVoteRequest(m);
      case "voteResp":
      case "preVoteResp":
        return this.handleVoteResponse(m);
      case "append":
      case "heartbeat":
      case "quiesce":
      case "snapshot":
        if (this.currentRole !== "follower") this.becomeFollower(this.currentTerm, m.from);
        this.currentLeader = m.from;
        this.electionElapsed = 0;
        if (m.type === "append") return this.handleAppend(m);
        if (m.type === "snapshot") return this.handleSnapshot(m);
        if (m.type === "quiesce") return this.handleQuiesce(m.commit);
        return this.handleHeartbeat(m.from, m.commit, m.round);
      case "appendResp":
        return this.handleAppendResponse(m);
      case "heartbeatResp":
        return this.handleHeartbeatResponse(m);
      case "readIndex":
        if (this.currentRole === "leader") this.leaderRead(m.from, m.request);
        return;
      case "readIndexResp":
        // Only an answer to a request of this node, in this term: nothing else can release a read.
        if (this.forwardedReads.delete(m.request)) this.readStates.push({ index: m.index, request: m.request });
        return;
      case "timeoutNow":
        // A learner, or a node removed since, must not campaign on a transfer meant for a voter.
        if (this.currentRole !== "leader" && this.config.isVoter(this.id)) this.campaign("vote", true);
        return;
    }
  }

  // --- output ---

  hasReady(): boolean {
    this.sendOwedAppends();
    return (
      this.outbox.length > 0 ||
      this.readStates.length > 0 ||
      this.log.hasUnstable() ||
      this.log.pendingSnapshot !== undefined ||
      this.log.committed > this.log.applied ||
      !sameHardState(this.hardState(), this.persisted)
    );
  }

  /**
   * What to persist, send and apply now; the caller does it all, then calls advance(ready). One at a
   * time: a second ready() before advance() would hand out the same entries again, and throws.
   */
  ready(): Ready {
    assert(this.readyOut === undefined, "ready() again before advance(): the last Ready is still being handled");
    this.sendOwedAppends();
    const hardState = this.hardState();
    const entries = this.log.unstable();
    const ready: Ready = {
      snapshot: this.log.pendingSnapshot,
      hardState: sameHardState(hardState, this.persisted) ? undefined : hardState,
      entries,
      mustSync:
        this.log.pendingSnapshot !== undefined ||
        entries.length > 0 ||
        hardState.term !== this.persisted.term ||
        hardState.vote !== this.persisted.vote,
      messages: this.outbox,
      committed: this.log.toApply(),
      readStates: this.readStates,
    };
    this.outbox = [];
    this.readStates = [];
    this.readyOut = ready;
    return ready;
  }

  /** The caller has persisted, sent and applied what `ready` held. */
  advance(ready: Ready): void {
    assert(ready === this.readyOut, "advance() with a Ready that is not the one handed out last");
    this.readyOut = undefined;
    if (ready.snapshot) this.log.snapshotInstalled(ready.snapshot.index);
    if (ready.hardState) this.persisted = ready.hardState;
    const last = ready.entries[ready.entries.length - 1];
    if (last) this.log.stableTo(last.index, last.term);
    const applied = ready.committed[ready.committed.length - 1];
    if (applied) this.log.appliedTo(applied.index);
  }

  /**
   * The log changed: the configuration follows it. A leader starts or stops replicating to the
   * members added or removed.
   */
  private logChanged(written: readonly Entry[]): void {
    const before = this.config;
    this.confs.observe(written, this.log.lastIndex());
    if (this.config === before || this.currentRole !== "leader") return;
    for (const id of [...this.progress.keys()]) {
      if (id !== this.id && !this.config.isMember(id)) this.progress.delete(id);
    }
    if (this.transferee !== NONE && !this.config.isVoter(this.transferee)) this.transferee = NONE;
    for (const id of this.replicas) {
      if (!this.progress.has(id)) this.progress.set(id, new Progress(0, this.log.lastIndex() + 1, this.flow));
    }
  }

  hardState(): HardState {
    return { term: this.currentTerm, vote: this.vote, commit: this.log.committed };
  }

  // --- roles ---

  private becomeFollower(term: number, leader: NodeId): void {
    if (term > this.currentTerm) {
      this.vote = NONE;
      // Answers to reads forwarded in an older term can no longer come (they would be stale).
      this.forwardedReads = new Set();
    }
    this.currentTerm = term;
    this.currentRole = "follower";
    this.currentLeader = leader;
    this.reset();
  }

  private becomeLeader(): void {
    assert(this.currentRole === "candidate", () => `node ${this.id} becomes leader from ${this.currentRole}`);
    this.currentRole = "leader";
    this.currentLeader = this.id;
    this.reset();
    const next = this.log.lastIndex() + 1;
    this.progress.set(this.id, new Progress(next - 1, next, this.flow));
    for (const id of this.replicas) this.progress.set(id, new Progress(0, next, this.flow));
    // An entry of its own term: only entries of the current term are committed by counting
    // replicas (§5.4.2, Figure 8); this one commits the ones before it.
    this.appendOwn([null]);
  }

  private reset(): void {
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    this.resetElectionTimer();
    this.votes = new Map();
    this.progress = new Map();
    this.transferee = NONE;
    this.appendsOwed = false;
    this.reads.clear();
  }

  private resetElectionTimer(): void {
    this.randomizedElectionTicks = this.electionTicks + Math.floor(this.random() * this.electionTicks);
  }

  /** PreVote first: a node only raises its term once a quorum says it could win (§9.6 of the thesis). */
  private campaign(kind: "preVote" | "vote", transfer = false): void {
    if (kind === "preVote") {
      this.currentRole = "preCandidate";
      this.currentLeader = NONE;
      this.votes = new Map();
      this.electionElapsed = 0;
      this.resetElectionTimer();
    } else {
      this.becomeFollower(this.currentTerm + 1, NONE);
      this.currentRole = "candidate";
      this.vote = this.id;
    }
    const term = kind === "preVote" ? this.currentTerm + 1 : this.currentTerm;
    // Votes are counted in this node's latest configuration, where it may no longer be a voter itself.
    if (this.config.isVoter(this.id)) this.votes.set(this.id, true);
    if (this.peers.length === 0) return this.winElection(kind);
    for (const to of this.peers) {
      this.send({ type: kind, to, term, lastIndex: this.log.lastIndex(), lastTerm: this.log.lastTerm(), transfer });
    }
  }

  private winElection(kind: "preVote" | "vote"): void {
    if (kind === "preVote") this.campaign("vote");
    else this.becomeLeader();
  }

  private handleVoteRequest(m: VoteRequest): void {
    const pre = m.type === "preVote";
    // A real vote is given once per term; a pre-vote only says "I would", for a later term.
    const free = pre ? m.term > this.currentTerm : this.vote === NONE || this.vote === m.from;
    const eligible = !this.votesOnlyAsMember || this.config.isMember(this.id);
    const grant = eligible && free && this.log.isUpToDate(m.lastIndex, m.lastTerm);
    if (grant && !pre) {
      this.vote = m.from;
      this.electionElapsed = 0;
    }
    this.send({
      type: pre ? "preVoteResp" : "voteResp",
      to: m.from,
      term: grant && pre ? m.term : this.currentTerm,
      reject: !grant,
    });
  }

  private handleVoteResponse(m: VoteResponse): void {
    const kind = m.type === "preVoteResp" ? "preVote" : "vote";
    if (
      (kind === "preVote" && this.currentRole !== "preCandidate") ||
      (kind === "vote" && this.currentRole !== "candidate")
    )
      return;
    if (!this.config.isVoter(m.from)) return;
    this.votes.set(m.from, !m.reject);
    const granted = [...this.votes.values()].filter(Boolean).length;
    if (granted >= this.quorum) this.winElection(kind);
    else if (this.votes.size - granted >= this.quorum) this.becomeFollower(this.currentTerm, NONE);
  }

  // --- replication ---

  private appendOwn(data: readonly (Uint8Array | null)[], conf?: ConfChange): void {
    const last = this.log.lastIndex();
    const entries: Entry[] = data.map((d, i) => ({
      index: last + 1 + i,
      term: this.currentTerm,
      data: d,
      ...(conf ? { conf } : {}),
    }));
    this.log.append(entries);
    this.logChanged(entries);
    const self = this.progress.get(this.id)!;
    self.acknowledge(this.log.lastIndex());
    this.maybeCommit();
    this.appendsOwed = true;
  }

  private sendOwedAppends(): void {
    if (!this.appendsOwed) return;
    this.appendsOwed = false;
    if (this.currentRole === "leader") for (const to of this.replicas) this.sendAppend(to);
  }

  /** Sends `to` what it needs next, as much as its progress state and window allow. */
  private sendAppend(to: NodeId): void {
    const progress = this.progress.get(to)!;
    // Bounded: each round sends at least one entry or stops.
    for (let round = 0; !progress.paused; round++) {
      const prevIndex = progress.next - 1;
      // What the follower needs next was compacted away: send the snapshot instead (InstallSnapshot).
      if (prevIndex < this.log.snapshotIndex()) return this.sendSnapshot(to, progress);
      const entries = this.entriesFrom(progress.next);
      this.send({
        type: "append",
        to,
        term: this.currentTerm,
        prevIndex,
        prevTerm: this.log.term(prevIndex),
        entries,
        commit: this.log.committed,
      });
      const bytes = entries.reduce((sum, entry) => sum + (entry.data?.byteLength ?? 0), 0);
      progress.sent(prevIndex + entries.length, entries.length, bytes);
      // Replicating: go on while the window has room and entries remain; probing: one at a time.
      if (entries.length === 0 || progress.state !== "replicate" || progress.next > this.log.lastIndex()) return;
      assert(round < this.flow.inflightMessagesMax, "sendAppend did not stop at the inflight window");
    }
  }

  /** Entries from `next` on, within the per-message limits (at least one when there is one). */
  private entriesFrom(next: number): Entry[] {
    const entries = this.log.slice(next, Math.min(this.log.lastIndex() + 1, next + this.entriesPerMessageMax));
    let bytes = 0;
    for (let i = 0; i < entries.length; i++) {
      bytes += entries[i]!.data?.byteLength ?? 0;
      if (i > 0 && bytes > this.messageBytesMax) return entries.slice(0, i);
    }
    return entries;
  }

  private sendSnapshot(to: NodeId, progress: Progress): void {
    const snapshot = this.storage.snapshot();
    this.send({ type: "snapshot", to, term: this.currentTerm, snapshot });
    progress.snapshotSent(snapshot.index);
  }

  private handleSnapshot(m: SnapshotMessage): void {
    const { snapshot } = m;
    const accept = (index: number) =>
      this.send({ type: "appendResp", to: m.from, term: this.currentTerm, index, reject: false });
    if (snapshot.index <= this.log.committed) return accept(this.log.committed);
    // A log that already holds the snapshot's last entry only needs its commit index moved.
    if (this.log.matchTerm(snapshot.index, snapshot.term)) this.log.commitTo(snapshot.index);
    else {
      this.log.restore(snapshot);
      if (snapshot.conf) this.confs.reset(snapshot.conf);
    }
    accept(snapshot.index);
  }

  private handleAppend(m: Append): void {
    if (m.prevIndex < this.log.committed) {
      // Everything up to the commit index already matches the leader's log.
      this.send({ type: "appendResp", to: m.from, term: this.currentTerm, index: this.log.committed, reject: false });
      return;
    }
    const matched = this.log.maybeAppend(m.prevIndex, m.prevTerm, m.entries);
    if (matched !== undefined) {
      this.logChanged(m.entries);
      // Never past what is known to match the leader's: entries after it may still be replaced.
      this.log.commitTo(Math.min(m.commit, matched));
      this.send({ type: "appendResp", to: m.from, term: this.currentTerm, index: matched, reject: false });
      return;
    }
    // Say where the logs can first agree, so the leader skips a whole term per round trip.
    const hintIndex = this.log.findConflictByTerm(m.prevIndex, m.prevTerm);
    this.send({
      type: "appendResp",
      to: m.from,
      term: this.currentTerm,
      index: m.prevIndex,
      reject: true,
      hintIndex,
      hintTerm: this.log.term(hintIndex),
    });
  }

  private handleAppendResponse(m: AppendResponse): void {
    if (this.currentRole !== "leader") return;
    const progress = this.progress.get(m.from);
    if (!progress) return;
    progress.recentActive = true;
    if (m.reject) {
      const hint = m.hintTerm ? this.log.findConflictByTerm(m.hintIndex, m.hintTerm) : m.hintIndex;
      if (progress.rejected(m.index, hint)) this.sendAppend(m.from);
      return;
    }
    if (progress.acknowledge(m.index)) {
      this.maybeCommit();
      if (m.from === this.transferee && progress.match === this.log.lastIndex())
        this.send({ type: "timeoutNow", to: m.from, term: this.currentTerm });
    }
    if (progress.next <= this.log.lastIndex()) this.sendAppend(m.from);
  }

  private maybeCommit(): void {
    const matches = this.config
      .voterIds()
      .map((id) => this.progress.get(id)?.match ?? 0)
      .sort((a, b) => b - a);
    const index = matches[this.quorum - 1]!;
    // Only an entry of this term is committed by counting replicas (§5.4.2, Figure 8).
    if (index > this.log.committed && this.log.term(index) === this.currentTerm) {
      this.log.commitTo(index);
      this.releaseReads();
      this.appendsOwed = true;
      // Removed by a change now committed: step down (§4.2.2); the remaining voters already use
      // the configuration without this node and elect a leader among themselves. They are told
      // the commit first: stepping down drops what a leader owes.
      if (!this.config.isVoter(this.id) && this.confs.lastChangeIndex <= this.log.committed) {
        this.sendOwedAppends();
        this.becomeFollower(this.currentTerm, NONE);
      }
    }
  }

  // --- heartbeats, check quorum, reads ---

  private tickLeader(): void {
    this.electionElapsed++;
    if (this.electionElapsed >= this.electionTicks) {
      this.electionElapsed = 0;
      const active = this.config
        .voterIds()
        .filter((id) => id === this.id || this.progress.get(id)?.recentActive).length;
      for (const progress of this.progress.values()) progress.recentActive = false;
      if (active < this.quorum) return this.becomeFollower(this.currentTerm, NONE);
      if (this.transferee !== NONE) this.transferee = NONE; // not done within an election timeout: give up
    }
    this.heartbeatElapsed++;
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      if (this.idle()) return this.quiesceGroup();
      this.broadcastHeartbeat();
    }
  }

  /**
   * Nothing is left for the group to do: every entry is committed and every member has all of them,
   * no read waits for a round, no transfer is under way, and every voter answered within this
   * election timeout — every member but those the host says are down (updateDown), as long as a
   * quorum of voters answered. A voter that is down and not known to be would campaign when it
   * returns, having got no quiesce; one known to be wakes the leader when it returns.
   */
  private idle(): boolean {
    if (!this.mayQuiesce || !this.reads.empty || this.transferee !== NONE) return false;
    const last = this.log.lastIndex();
    if (this.log.committed !== last) return false;
    let answered = 1; // the leader
    for (const id of this.replicas) {
      if (this.down.has(id)) continue;
      const progress = this.progress.get(id)!;
      if (progress.match !== last || progress.state !== "replicate") return false;
      if (!this.config.isVoter(id)) continue;
      if (!progress.recentActive) return false;
      answered++;
    }
    return answered >= this.quorum;
  }

  /**
   * The leader's last heartbeat: with it every member learns the final commit index, then the group
   * stops ticking. Not to members taken for down: their logs may not match this one up to the
   * commit index (idle() did not look), and one that is in fact up would commit what it holds there.
   */
  private quiesceGroup(): void {
    for (const to of this.replicas)
      if (!this.down.has(to)) this.send({ type: "quiesce", to, term: this.currentTerm, commit: this.log.committed });
    this.quiet = true;
  }

  /** A follower whose log ends at the leader's final commit stops ticking with it; one that lacks entries goes on. */
  private handleQuiesce(commit: number): void {
    this.log.commitTo(Math.min(commit, this.log.lastIndex()));
    if (this.log.lastIndex() === commit) this.quiet = true;
  }

  /**
   * Whether a message wakes a quiet node. Not the leader's quiesce, nor the answers to the heartbeats
   * it sent just before it (an idle group has nothing for them to change), nor a heartbeat of the
   * leader this node follows in its term: one sent before the quiesce that arrives late or twice, or
   * one of a leader woken by a read. Its answer wakes nobody, so a follower it woke would tick alone
   * while its leader stays quiet, and two such followers would time out and elect one of themselves;
   * and a follower need not tick while it hears from its leader (a heartbeat is answered all the same).
   * Nor a vote request from a node that is no voter here: one removed that never learned it was goes
   * on campaigning, and would wake the group each time for nothing (a quiet node, having heard from
   * its leader, ignores the request either way; only a voter's makes the leader heartbeat it back).
   * A transfer's request is news all the same: it passes the lease and may take the leader away.
   */
  private isNews(m: Message): boolean {
    if (m.type === "quiesce" || m.type === "heartbeatResp") return false;
    if ((m.type === "vote" || m.type === "preVote") && !this.config.isVoter(m.from) && !m.transfer) return false;
    return !(m.type === "heartbeat" && m.term === this.currentTerm && m.from === this.currentLeader);
  }

  /**
   * Back to ticking, with whole timeouts ahead: the time spent quiet says nothing of the leader or the
   * followers. Nor do the answers a leader had before it went quiet: it starts a new CheckQuorum round
   * and goes quiet again, or keeps leading past the round, only on answers heard since (else, cut off
   * while quiet, it went quiet again at once and stayed leader however long others led a newer term).
   */
  private wake(): void {
    if (!this.quiet) return;
    this.quiet = false;
    this.electionElapsed = 0;
    this.heartbeatElapsed = 0;
    for (const progress of this.progress.values()) progress.recentActive = false;
  }

  private broadcastHeartbeat(): void {
    const round = this.reads.roundToSend();
    for (const to of this.replicas) {
      const progress = this.progress.get(to)!;
      // Never a commit index past what the follower is known to match.
      const commit = Math.min(progress.match, this.log.committed);
      this.send({ type: "heartbeat", to, term: this.currentTerm, commit, round });
    }
  }

  private handleHeartbeat(from: NodeId, commit: number, round: number): void {
    this.log.commitTo(Math.min(commit, this.log.lastIndex()));
    this.send({ type: "heartbeatResp", to: from, term: this.currentTerm, round });
  }

  private handleHeartbeatResponse(m: HeartbeatResponse): void {
    if (this.currentRole !== "leader") return;
    const progress = this.progress.get(m.from);
    if (!progress) return;
    progress.heartbeatAnswered();
    if (progress.match < this.log.lastIndex()) this.sendAppend(m.from);
    // Only voters confirm leadership for a read.
    if (m.round > 0 && this.config.isVoter(m.from)) {
      const released = this.reads.answer(m.from, m.round, this.config.voterIds(), this.quorum, this.id);
      for (const read of released) this.answerRead(read.from, read.index, read.request);
    }
  }

  /**
   * ReadIndex (§6.4 of the thesis): the read index is the commit index, once an entry of this term
   * is committed (before that the commit index may lag the previous leader's); it may be served
   * once a quorum confirms, by answering a heartbeat sent after the read arrived, that this node is
   * still the leader.
   */
  private leaderRead(from: NodeId, request: ReadRequestId): void {
    const termCommitted = this.log.term(this.log.committed) === this.currentTerm;
    this.reads.add(from, request, termCommitted ? this.log.committed : 0);
    if (!termCommitted) return;
    // The only voter: nobody else to ask (a removed leader is no voter, and has no say).
    if (this.peers.length === 0 && this.config.isVoter(this.id)) return this.releaseAlone();
    this.broadcastHeartbeat();
  }

  private releaseReads(): void {
    if (this.log.term(this.log.committed) !== this.currentTerm) return;
    this.reads.confirmTerm(this.log.committed);
    if (this.peers.length === 0 && this.config.isVoter(this.id)) return this.releaseAlone();
    if (this.reads.waitingForRound()) this.broadcastHeartbeat();
  }

  private releaseAlone(): void {
    for (const read of this.reads.takeConfirmed()) this.answerRead(read.from, read.index, read.request);
  }

  private answerRead(from: NodeId, index: number, request: ReadRequestId): void {
    if (from === this.id) this.readStates.push({ index, request });
    else this.send({ type: "readIndexResp", to: from, term: this.currentTerm, index, request });
  }

  private send(message: Outgoing): void {
    this.outbox.push({ ...message, from: this.id } as Message);
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

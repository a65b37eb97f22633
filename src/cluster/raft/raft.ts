import { assert } from "../../errors.ts";
import { ConfigTracker, type Configuration } from "./configuration.ts";
import { Progress } from "./progress.ts";
import { RaftLog } from "./raft-log.ts";
import { ReadQueue } from "./read-queue.ts";
import type { RaftStorage } from "./storage.ts";
import {
  type ConfChange,
  type ConfState,
  type Entry,
  type HardState,
  type Message,
  type MessageType,
  NONE,
  type NodeId,
  type ReadState,
  type Ready,
  type Role,
} from "./types.ts";

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
}

/**
 * The Raft consensus core (Ongaro & Ousterhout), in the style of etcd's raft package: a synchronous
 * state machine with no clock, network, disk or randomness of its own. The caller feeds it ticks,
 * messages and proposals, and collects a Ready (ready()), which says what to persist, send and apply,
 * then calls advance(). With PreVote and CheckQuorum: a node cut off from the cluster cannot raise
 * the term when it returns, and a leader that loses its quorum steps down.
 */
export class Raft {
  readonly id: NodeId;
  role: Role = "follower";
  term: number;
  vote: NodeId;
  leader: NodeId = NONE;
  readonly log: RaftLog;
  private readonly storage: RaftStorage;

  private readonly electionTicks: number;
  private readonly heartbeatTicks: number;
  private readonly entriesPerMessageMax: number;
  private readonly random: () => number;
  private electionElapsed = 0;
  private heartbeatElapsed = 0;
  private randomizedElectionTicks = 0;
  private votes = new Map<NodeId, boolean>();
  private progress = new Map<NodeId, Progress>();
  private transferee: NodeId = NONE;
  private readonly confs: ConfigTracker;
  private readonly reads = new ReadQueue();
  private outbox: Message[] = [];
  private readStates: ReadState[] = [];
  private persisted: HardState;

  constructor(options: RaftOptions) {
    this.id = options.id;
    this.confs = new ConfigTracker(options.storage.snapshot().conf ?? { voters: options.voters, learners: [] });
    this.electionTicks = options.electionTicks ?? 10;
    this.heartbeatTicks = options.heartbeatTicks ?? 1;
    assert(this.heartbeatTicks < this.electionTicks, "heartbeatTicks must be less than electionTicks");
    this.entriesPerMessageMax = options.entriesPerMessageMax ?? 64;
    this.random = options.random;
    this.storage = options.storage;
    this.log = new RaftLog(options.storage);
    this.confs.observe(this.log.slice(this.log.snapshotIndex() + 1, this.log.lastIndex() + 1), this.log.lastIndex());
    const state = options.storage.hardState();
    this.term = state.term;
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

  get voters(): NodeId[] {
    return this.config.voterIds();
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

  tick(): void {
    if (this.role === "leader") return this.tickLeader();
    this.electionElapsed++;
    if (this.electionElapsed >= this.randomizedElectionTicks && this.mayCampaign()) this.campaign("preVote");
  }

  /** Starts an election now, as if the election timeout had passed (still through PreVote). */
  campaignNow(): void {
    if (this.role !== "leader" && this.mayCampaign()) this.campaign("preVote");
  }

  /** Proposes data for the log; false when this node cannot take it now (not the leader, or transferring). */
  propose(data: Uint8Array): boolean {
    if (this.role !== "leader" || this.transferee !== NONE || !this.config.isVoter(this.id)) return false;
    this.appendOwn([data]);
    return true;
  }

  /**
   * Proposes a change of members, one server at a time; false when this node is not the leader, an
   * earlier change is not committed yet (two in flight could leave two disjoint majorities), or no
   * entry of this leader's term has committed yet. The last rule closes the hole in single-server
   * changes Ongaro found (raft-dev, 2015): a change left uncommitted by an earlier leader may still
   * be in another configuration's majority; committing an entry of its own term first makes this
   * leader's log — and configuration — the one every future leader descends from. (etcd reaches the
   * same by setting pendingConfIndex to the last index when it becomes leader.)
   */
  proposeConfChange(change: ConfChange): boolean {
    if (this.role !== "leader" || this.transferee !== NONE) return false;
    if (this.confs.lastChangeIndex > this.log.committed || this.log.term(this.log.committed) !== this.term)
      return false;
    if (change.type === "remove" && this.config.isVoter(change.node) && this.config.voterIds().length === 1)
      return false;
    this.appendOwn([null], change);
    return true;
  }

  /** Asks for a linearizable read; a ReadState with this context comes out of a later Ready (or none if leadership is lost). */
  readIndex(context: number): void {
    if (this.role === "leader") this.leaderRead(this.id, context);
    else if (this.leader !== NONE) this.send({ type: "readIndex", to: this.leader, term: this.term, context });
  }

  /** Hands leadership to `to` once its log has caught up (§3.10 of the thesis); leader only. */
  transferLeadership(to: NodeId): void {
    if (this.role !== "leader" || to === this.id || !this.config.isVoter(to) || this.transferee === to) return;
    this.transferee = to;
    const progress = this.progress.get(to)!;
    if (progress.match === this.log.lastIndex()) this.send({ type: "timeoutNow", to, term: this.term });
    else this.sendAppend(to);
  }

  step(m: Message): void {
    if (m.term > this.term) {
      const isVoteRequest = m.type === "vote" || m.type === "preVote";
      // CheckQuorum's lease: while a leader is heard from, a vote request is a disruption (a node
      // back from a partition), not an election; a transfer (force) is the exception.
      if (isVoteRequest && !m.force && this.leader !== NONE && this.electionElapsed < this.electionTicks) return;
      const futureTerm = m.type === "preVote" || (m.type === "preVoteResp" && !m.reject);
      if (!futureTerm) {
        const fromLeader =
          m.type === "append" || m.type === "heartbeat" || m.type === "snapshot" || m.type === "timeoutNow";
        this.becomeFollower(m.term, fromLeader ? m.from : NONE);
      }
    } else if (m.term < this.term) {
      // A stale leader learns the new term from the answer and steps down; other old messages are dropped.
      if (m.type === "append" || m.type === "heartbeat" || m.type === "snapshot")
        this.send({ type: "appendResp", to: m.from, term: this.term, index: 0, reject: true });
      else if (m.type === "preVote") this.send({ type: "preVoteResp", to: m.from, term: this.term, reject: true });
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
      case "snapshot":
        if (this.role !== "follower") this.becomeFollower(this.term, m.from);
        this.leader = m.from;
        this.electionElapsed = 0;
        if (m.type === "append") return this.handleAppend(m);
        return m.type === "heartbeat" ? this.handleHeartbeat(m) : this.handleSnapshot(m);
      case "appendResp":
        return this.handleAppendResponse(m);
      case "heartbeatResp":
        return this.handleHeartbeatResponse(m);
      case "readIndex":
        if (this.role === "leader") this.leaderRead(m.from, m.context ?? 0);
        return;
      case "readIndexResp":
        this.readStates.push({ index: m.index ?? 0, context: m.context ?? 0 });
        return;
      case "timeoutNow":
        if (this.role !== "leader") this.campaign("vote", true);
        return;
    }
  }

  // --- output ---

  hasReady(): boolean {
    return (
      this.outbox.length > 0 ||
      this.readStates.length > 0 ||
      this.log.unstable().length > 0 ||
      this.log.pendingSnapshot !== undefined ||
      this.log.committed > this.log.applied ||
      !sameHardState(this.hardState(), this.persisted)
    );
  }

  /** What to persist, send and apply now; the caller does it all, then calls advance(ready). */
  ready(): Ready {
    const hardState = this.hardState();
    const ready: Ready = {
      snapshot: this.log.pendingSnapshot,
      hardState: sameHardState(hardState, this.persisted) ? undefined : hardState,
      entries: this.log.unstable(),
      messages: this.outbox,
      committed: this.log.toApply(),
      readStates: this.readStates,
    };
    this.outbox = [];
    this.readStates = [];
    return ready;
  }

  /** The caller has persisted, sent and applied what `ready` held. */
  advance(ready: Ready): void {
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
    if (this.config === before || this.role !== "leader") return;
    for (const id of [...this.progress.keys()]) {
      if (id !== this.id && !this.config.isMember(id)) this.progress.delete(id);
    }
    if (this.transferee !== NONE && !this.config.isVoter(this.transferee)) this.transferee = NONE;
    for (const id of this.replicas) {
      if (!this.progress.has(id)) this.progress.set(id, new Progress(0, this.log.lastIndex() + 1));
    }
  }

  hardState(): HardState {
    return { term: this.term, vote: this.vote, commit: this.log.committed };
  }

  // --- roles ---

  private becomeFollower(term: number, leader: NodeId): void {
    if (term > this.term) this.vote = NONE;
    this.term = term;
    this.role = "follower";
    this.leader = leader;
    this.reset();
  }

  private becomeLeader(): void {
    assert(this.role === "candidate", `node ${this.id} becomes leader from ${this.role}`);
    this.role = "leader";
    this.leader = this.id;
    this.reset();
    const next = this.log.lastIndex() + 1;
    this.progress.set(this.id, new Progress(next - 1, next));
    for (const id of this.replicas) this.progress.set(id, new Progress(0, next));
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
    this.reads.clear();
  }

  private resetElectionTimer(): void {
    this.randomizedElectionTicks = this.electionTicks + Math.floor(this.random() * this.electionTicks);
  }

  /** PreVote first: a node only raises its term once a quorum says it could win (§9.6 of the thesis). */
  private campaign(kind: "preVote" | "vote", force = false): void {
    if (kind === "preVote") {
      this.role = "preCandidate";
      this.leader = NONE;
      this.votes = new Map();
      this.electionElapsed = 0;
      this.resetElectionTimer();
    } else {
      this.becomeFollower(this.term + 1, NONE);
      this.role = "candidate";
      this.vote = this.id;
    }
    const term = kind === "preVote" ? this.term + 1 : this.term;
    // Votes are counted in this node's latest configuration, where it may no longer be a voter itself.
    if (this.config.isVoter(this.id)) this.votes.set(this.id, true);
    if (this.peers.length === 0) return this.winElection(kind);
    for (const to of this.peers) {
      this.send({
        type: kind,
        to,
        term,
        index: this.log.lastIndex(),
        logTerm: this.log.lastTerm(),
        ...(force ? { force } : {}),
      });
    }
  }

  private winElection(kind: "preVote" | "vote"): void {
    if (kind === "preVote") this.campaign("vote");
    else this.becomeLeader();
  }

  private handleVoteRequest(m: Message): void {
    const pre = m.type === "preVote";
    // A real vote is given once per term; a pre-vote only says "I would", for a later term.
    const free = pre ? m.term > this.term : this.vote === NONE || this.vote === m.from;
    const grant = free && this.log.isUpToDate(m.index ?? 0, m.logTerm ?? 0);
    if (grant && !pre) {
      this.vote = m.from;
      this.electionElapsed = 0;
    }
    const type: MessageType = pre ? "preVoteResp" : "voteResp";
    this.send({ type, to: m.from, term: grant && pre ? m.term : this.term, reject: !grant });
  }

  private handleVoteResponse(m: Message): void {
    const kind = m.type === "preVoteResp" ? "preVote" : "vote";
    if ((kind === "preVote" && this.role !== "preCandidate") || (kind === "vote" && this.role !== "candidate")) return;
    if (!this.config.isVoter(m.from)) return;
    this.votes.set(m.from, !m.reject);
    const granted = [...this.votes.values()].filter(Boolean).length;
    if (granted >= this.quorum) this.winElection(kind);
    else if (this.votes.size - granted >= this.quorum) this.becomeFollower(this.term, NONE);
  }

  // --- replication ---

  private appendOwn(data: readonly (Uint8Array | null)[], conf?: ConfChange): void {
    const last = this.log.lastIndex();
    const entries: Entry[] = data.map((d, i) => ({
      index: last + 1 + i,
      term: this.term,
      data: d,
      ...(conf ? { conf } : {}),
    }));
    this.log.append(entries);
    this.logChanged(entries);
    const self = this.progress.get(this.id)!;
    self.acknowledge(this.log.lastIndex());
    this.maybeCommit();
    for (const to of this.replicas) this.sendAppend(to);
  }

  private sendAppend(to: NodeId): void {
    const progress = this.progress.get(to)!;
    if (progress.paused) return;
    const prevIndex = progress.next - 1;
    // What the follower needs next was compacted away: send the snapshot instead (InstallSnapshot).
    if (prevIndex < this.log.snapshotIndex()) return this.sendSnapshot(to, progress);
    const entries = this.log.slice(
      progress.next,
      Math.min(this.log.lastIndex() + 1, progress.next + this.entriesPerMessageMax),
    );
    this.send({
      type: "append",
      to,
      term: this.term,
      index: prevIndex,
      logTerm: this.log.term(prevIndex),
      entries,
      commit: this.log.committed,
    });
    progress.sent(entries.length);
  }

  private sendSnapshot(to: NodeId, progress: Progress): void {
    const snapshot = this.storage.snapshot();
    this.send({ type: "snapshot", to, term: this.term, snapshot });
    progress.snapshotSent(snapshot.index);
  }

  private handleSnapshot(m: Message): void {
    const snapshot = m.snapshot!;
    if (snapshot.index <= this.log.committed) {
      this.send({ type: "appendResp", to: m.from, term: this.term, index: this.log.committed });
      return;
    }
    // A log that already holds the snapshot's last entry only needs its commit index moved.
    if (this.log.matchTerm(snapshot.index, snapshot.term)) this.log.commitTo(snapshot.index);
    else {
      this.log.restore(snapshot);
      if (snapshot.conf) this.confs.reset(snapshot.conf);
    }
    this.send({ type: "appendResp", to: m.from, term: this.term, index: snapshot.index });
  }

  private handleAppend(m: Message): void {
    const prevIndex = m.index ?? 0;
    if (prevIndex < this.log.committed) {
      // Everything up to the commit index already matches the leader's log.
      this.send({ type: "appendResp", to: m.from, term: this.term, index: this.log.committed });
      return;
    }
    const matched = this.log.maybeAppend(prevIndex, m.logTerm ?? 0, m.entries ?? []);
    if (matched !== undefined) {
      this.logChanged(m.entries ?? []);
      this.log.commitTo(Math.min(m.commit ?? 0, matched));
      this.send({ type: "appendResp", to: m.from, term: this.term, index: matched });
      return;
    }
    // Say where the logs can first agree, so the leader skips a whole term per round trip.
    const hintIndex = this.log.findConflictByTerm(prevIndex, m.logTerm ?? 0);
    this.send({
      type: "appendResp",
      to: m.from,
      term: this.term,
      index: prevIndex,
      reject: true,
      hintIndex,
      hintTerm: this.log.term(hintIndex),
    });
  }

  private handleAppendResponse(m: Message): void {
    if (this.role !== "leader") return;
    const progress = this.progress.get(m.from);
    if (!progress) return;
    progress.recentActive = true;
    if (m.reject) {
      const hint = m.hintTerm ? this.log.findConflictByTerm(m.hintIndex ?? 0, m.hintTerm) : (m.hintIndex ?? 0);
      if (progress.rejected(m.index ?? 0, hint)) this.sendAppend(m.from);
      return;
    }
    if (progress.acknowledge(m.index ?? 0)) {
      this.maybeCommit();
      if (m.from === this.transferee && progress.match === this.log.lastIndex())
        this.send({ type: "timeoutNow", to: m.from, term: this.term });
    }
    // More to send; entries already in flight are not sent again here (a heartbeat's answer retries).
    if (progress.next <= this.log.lastIndex()) this.sendAppend(m.from);
  }

  private maybeCommit(): void {
    const matches = this.config
      .voterIds()
      .map((id) => this.progress.get(id)?.match ?? 0)
      .sort((a, b) => b - a);
    const index = matches[this.quorum - 1]!;
    if (index > this.log.committed && this.log.term(index) === this.term) {
      this.log.commitTo(index);
      this.releaseReads();
      for (const to of this.replicas) this.sendAppend(to);
      // Removed by a change now committed: step down (§4.2.2); the remaining voters already use
      // the configuration without this node and elect a leader among themselves.
      if (!this.config.isVoter(this.id) && this.confs.lastChangeIndex <= this.log.committed)
        this.becomeFollower(this.term, NONE);
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
      if (active < this.quorum) return this.becomeFollower(this.term, NONE);
      if (this.transferee !== NONE) this.transferee = NONE; // not done within an election timeout: give up
    }
    this.heartbeatElapsed++;
    if (this.heartbeatElapsed >= this.heartbeatTicks) {
      this.heartbeatElapsed = 0;
      this.broadcastHeartbeat(this.reads.lastContext());
    }
  }

  private broadcastHeartbeat(context: number | undefined): void {
    for (const to of this.replicas) {
      const progress = this.progress.get(to)!;
      progress.resume();
      const commit = Math.min(progress.match, this.log.committed);
      this.send({ type: "heartbeat", to, term: this.term, commit, ...(context === undefined ? {} : { context }) });
    }
  }

  private handleHeartbeat(m: Message): void {
    this.log.commitTo(Math.min(m.commit ?? 0, this.log.lastIndex()));
    this.send({
      type: "heartbeatResp",
      to: m.from,
      term: this.term,
      ...(m.context === undefined ? {} : { context: m.context }),
    });
  }

  private handleHeartbeatResponse(m: Message): void {
    if (this.role !== "leader") return;
    const progress = this.progress.get(m.from);
    if (!progress) return;
    progress.recentActive = true;
    progress.resume();
    if (progress.match < this.log.lastIndex()) this.sendAppend(m.from);
    // Only voters confirm leadership for a read.
    if (m.context !== undefined && this.config.isVoter(m.from)) {
      for (const read of this.reads.acknowledge(m.context, m.from, this.quorum))
        this.answerRead(read.from, read.index, read.context);
    }
  }

  /**
   * ReadIndex (§6.4 of the thesis): the read index is the commit index, once an entry of this term
   * is committed (before that the commit index may lag the previous leader's); it may be served
   * once a quorum confirms, by answering a heartbeat sent after the read arrived, that this node is
   * still the leader.
   */
  private leaderRead(from: NodeId, context: number): void {
    if (this.peers.length === 0) return this.answerRead(from, this.log.committed, context);
    const self = this.config.isVoter(this.id) ? this.id : undefined; // a removed leader's own say does not count
    this.reads.add(
      { from, context, index: this.log.committed, confirmed: this.log.term(this.log.committed) === this.term },
      self,
    );
    if (this.log.term(this.log.committed) === this.term) this.broadcastHeartbeat(context);
  }

  private releaseReads(): void {
    if (this.log.term(this.log.committed) !== this.term) return;
    const context = this.reads.confirmTerm(this.log.committed);
    if (context !== undefined) this.broadcastHeartbeat(context);
  }

  private answerRead(from: NodeId, index: number, context: number): void {
    if (from === this.id) this.readStates.push({ index, context });
    else this.send({ type: "readIndexResp", to: from, term: this.term, index, context });
  }

  private send(message: Omit<Message, "from">): void {
    this.outbox.push({ ...message, from: this.id });
  }
}

function sameHardState(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}

import { assert, describeError, HomeKvError, STORE_CLOSED_MESSAGE } from "../../errors.ts";
import type { ReplicationStats } from "../../storage/database.ts";
import { realTimers, type Timers } from "../../timers.ts";
import type { Raft } from "../raft/raft.ts";
import type {
  ConfChange,
  ConfState,
  Entry,
  HardState,
  Message,
  MessageType,
  NodeId,
  ReadState,
  Ready,
  Snapshot,
  SnapshotOutcome,
  Status,
} from "../raft/types.ts";

/** A ReadIndex round that did not finish in time (E_UNAVAILABLE): no leader, or this member too far behind. */
export class ReadTimeoutError extends HomeKvError {
  constructor(message: string) {
    super("E_UNAVAILABLE", message);
  }
}

/** Where a driver keeps the Raft log (DurableRaftLog; the core reads it through RaftStorage). */
export interface RaftPersistence {
  persist(hardState: HardState | undefined, entries: readonly Entry[], sync: boolean): Promise<void>;
  installSnapshot(snapshot: Snapshot): Promise<void>;
}

/** The replicated state machine: committed entries in log order, or a leader's snapshot instead of them. */
export interface ReplicatedStateMachine<R> {
  /** Every committed entry, in index order, empty and configuration entries included (they change no state). */
  apply(entry: Entry): R;
  /**
   * Replaces the whole state with the snapshot's (a follower far behind the leader). The loop waits
   * for it: nothing is applied meanwhile.
   */
  restore(snapshot: Snapshot): void | Promise<void>;
}

/** Hands the messages of one Ready to the peers (the peer transport groups them per peer). */
export interface RaftOutbox {
  send(messages: readonly Message[]): void;
}

export interface RaftDriverOptions<R> {
  raft: Raft;
  storage: RaftPersistence;
  stateMachine: ReplicatedStateMachine<R>;
  outbox: RaftOutbox;
  /** How often the group ticks; its own timer ticks it unless `tickedByHost`. */
  tickMs: number;
  /**
   * A host running many groups ticks this one (`tick()`), from one timer for all of them, instead
   * of a timer per group.
   */
  tickedByHost?: boolean;
  /** The ticks, read timeouts and clock; default: the real ones (src/timers.ts). */
  timers?: Timers;
  /** The log failed (a write or sync): the driver has stopped, and the process must restart. */
  onFatal?: (error: unknown) => void;
  /** A ReadIndex request not answered this long is sent again (its leader may be gone); default 20 ticks. */
  readRetryMs?: number;
  /**
   * Whether the transport knows this member's connection to a member is down. When the leader's
   * is, the core is told (leaderUnreachable) and an election follows within a few ticks, not a
   * whole election timeout.
   */
  disconnected?: (id: NodeId) => boolean;
  /** A member's name for people (default: "node N"); messages say "member NAME". */
  nameOf?: (id: number) => string;
}

interface PendingProposal<R> {
  term: number;
  resolve: (result: R) => void;
  reject: (error: unknown) => void;
}

interface ReadWaiter {
  resolve: (index: number) => void;
  reject: (error: unknown) => void;
}

/** A ReadIndex request out, and who waits for it. */
interface ReadBatch {
  request: string;
  sentAtMs: number;
  waiters: ReadWaiter[];
  /** Set once the read state came back: the waiters are served when the state machine reaches it. */
  index?: number;
}

/** The messages a leader sends that promise nothing of its own disk (see `handle`). */
const SENT_BEFORE_WRITE: ReadonlySet<MessageType> = new Set(["append", "heartbeat", "readIndexResp", "timeoutNow"]);

/**
 * Runs one Raft group: the only code that touches the core, in one loop (etcd's raft node). Each
 * turn takes one Ready and does it in the order Raft needs — install a snapshot, persist (synced
 * when the Ready says so), then send, then apply the committed entries and serve the reads, then
 * advance — and never takes another Ready before that one is advanced. Ticks and messages may
 * arrive meanwhile; they are stepped at once and their effects come out in the next Ready.
 *
 * Proposals are matched to what is applied by (index, term): an entry at an index and term is the
 * same on every member, so a proposal resolves when its entry is applied here, and is rejected
 * (E_PROPOSAL_DROPPED: it was not applied, a retry is safe) when another leader's entry is
 * applied at its index instead.
 *
 * Linearizable reads are batched: callers that arrive while a ReadIndex request is out wait for the
 * next one, which is sent as soon as the current one is answered — one heartbeat round serves every
 * read that arrived before it was sent (a read arriving after a request went out cannot use that
 * request's index: a write may have completed in between).
 */
export class RaftDriver<R> {
  /**
   * The proposals waiting to be applied, by index. Rarely more than one at an index: a write taken
   * by this member as leader, then its log cut back below it by another leader's, and the index
   * given to a later write when it leads again. Either may still be the one committed there (the
   * first lives on in the logs of members that took it), so both wait for the entry applied.
   */
  private readonly proposals = new Map<number, PendingProposal<R>[]>();
  private tickWaiters: (() => void)[] = [];
  private waitingReads: ReadWaiter[] = [];
  private readBatch: ReadBatch | undefined;
  private applied: number;
  private looping = false;
  private again = false;
  private started = false;
  private stopTicker: (() => void) | undefined;
  private failure: unknown;
  private stopped = false;
  private proposalsCommitted = 0;
  private proposalsDropped = 0;
  private leaderChanges = 0;
  private snapshotsSent = 0;
  private snapshotsFailed = 0;
  /** The latest heartbeat to each follower (its round and when it left), and the round trips measured. */
  private readonly heartbeatsOut = new Map<NodeId, { round: number; atMs: number }>();
  private readonly roundTripsMs = new Map<NodeId, number>();
  private lastLeader = 0;
  private readonly timers: Timers;

  constructor(private readonly options: RaftDriverOptions<R>) {
    this.applied = options.raft.status().applied;
    this.timers = options.timers ?? realTimers;
  }

  start(): void {
    assert(!this.started, "the driver is already running");
    this.started = true;
    if (!this.options.tickedByHost) this.stopTicker = this.timers.every(this.options.tickMs, () => this.tick());
    this.schedule();
  }

  /**
   * One tick of the group's clock: its own timer's, or its host's. A quiet (quiesced) group's costs
   * a few checks; it wakes if the transport lost its leader.
   */
  tick(): void {
    if (this.stopped) return;
    const { raft, disconnected } = this.options;
    const leader = raft.leader;
    if (leader !== 0 && leader !== raft.id && disconnected?.(leader)) raft.leaderUnreachable();
    if (disconnected && leader === raft.id) raft.updateDown(disconnected);
    // A quiet group has nothing to time: no read waits (a read wakes it), no election is due.
    if (!raft.quiesced) {
      raft.tick();
      this.retryUnansweredRead();
      if (raft.hasReady()) this.schedule();
    }
    if (this.tickWaiters.length > 0) this.releaseTickWaiters();
  }

  /** Whether the group is quiet here: idle, not ticking until a message or a call wakes it (RaftOptions.quiesce). */
  get quiesced(): boolean {
    return this.options.raft.quiesced;
  }

  /** A message from a peer. */
  receive(message: Message): void {
    if (this.stopped) return;
    if (message.type === "heartbeatResp") {
      const out = this.heartbeatsOut.get(message.from);
      if (out?.round === message.round) this.roundTripsMs.set(message.from, this.timers.now() - out.atMs);
    }
    this.options.raft.step(message);
    this.schedule();
  }

  /** Orders `data` through the log; resolves with what the state machine returned when it applied it here. */
  propose(data: Uint8Array): Promise<R> {
    let at: { index: number; term: number };
    try {
      at = this.submit(data);
    } catch (error) {
      return Promise.reject(error);
    }
    return new Promise<R>((resolve, reject) => {
      this.awaitApplied(at.index, { term: at.term, resolve, reject });
    });
  }

  /**
   * Appends `data` to the leader's log and says where; nothing waits for it here (a write forwarded
   * by a follower, which waits for it to be applied there). Throws E_NOT_LEADER when this member
   * cannot take it.
   */
  submit(data: Uint8Array): { index: number; term: number } {
    return this.submitAll([data]);
  }

  /** Like `submit` for several entries, all or none, at consecutive indexes from the one returned. */
  submitAll(data: readonly Uint8Array[]): { index: number; term: number } {
    const unavailable = this.unavailable();
    if (unavailable) throw unavailable;
    const { raft } = this.options;
    if (!raft.proposeAll(data)) {
      const leader = raft.leader;
      throw new HomeKvError(
        "E_NOT_LEADER",
        leader === raft.id || leader === 0
          ? "no leader can take writes right now (an election or a leadership transfer is under way)"
          : `this member is not the leader; ${this.options.nameOf ? `member ${this.options.nameOf(leader)}` : `node ${leader}`} is`,
      );
    }
    // Not status(): that copies every follower's progress, once per write here.
    const { lastIndex, term } = raft;
    this.schedule();
    return { index: lastIndex - data.length + 1, term };
  }

  /**
   * Resolves after the next tick (or at stop): a bounded wait for the group to move on. Rejects once
   * the driver has stopped, as `propose` does: a caller waiting tick by tick for a leader would
   * otherwise go round at once, forever on a stopped driver, starving the event loop.
   */
  nextTick(): Promise<void> {
    const unavailable = this.unavailable();
    if (unavailable) return Promise.reject(unavailable);
    return new Promise((resolve) => this.tickWaiters.push(resolve));
  }

  /** The leader this member knows of (0: none). */
  get leader(): number {
    return this.options.raft.leader;
  }

  /** The last entry applied here. */
  get appliedIndex(): number {
    return this.applied;
  }

  /**
   * Proposes a change of members (one at a time); resolves once its entry is applied here.
   * E_MEMBERSHIP when the core cannot take it now: not the leader, an earlier change not committed
   * yet, no entry of this leader's term committed yet, or the last voter's removal.
   */
  async proposeConfChange(change: ConfChange): Promise<void> {
    const unavailable = this.unavailable();
    if (unavailable) throw unavailable;
    const { raft } = this.options;
    if (!raft.proposeConfChange(change))
      throw new HomeKvError(
        "E_MEMBERSHIP",
        this.leads
          ? "the group cannot take a membership change now (an earlier one is not committed yet, or a new leader has not committed an entry of its term): try again"
          : "this member is not the leader",
      );
    const { lastIndex, term } = raft;
    this.schedule();
    await new Promise<R>((resolve, reject) => {
      this.awaitApplied(lastIndex, { term, resolve, reject });
    });
  }

  /** Asks the core to hand leadership to voter `to` (leader only); `groupStatus` tells whether it did. */
  transferLeadership(to: NodeId): void {
    this.options.raft.transferLeadership(to);
    this.schedule();
  }

  /** The core's view of itself and its followers, the members it goes by, and the index of their change. */
  groupStatus(): { status: Status; conf: ConfState; confIndex: number } {
    const { raft } = this.options;
    return { status: raft.status(), conf: raft.confState(), confIndex: raft.confIndex };
  }

  /**
   * Resolves with a read index once this member has applied up to it: reads of the state machine
   * made then are linearizable (§6.4). Rejects with a ReadTimeoutError after `timeoutMs`.
   */
  readBarrier(timeoutMs: number): Promise<number> {
    const unavailable = this.unavailable();
    if (unavailable) return Promise.reject(unavailable);
    return new Promise<number>((resolve, reject) => {
      const cancel = this.timers.after(timeoutMs, () => {
        // A member far behind (a replica still catching up) hears from its leader but cannot apply in time.
        const confirmed = this.readBatch?.waiters.includes(waiter) ? this.readBatch.index : undefined;
        this.waitingReads = this.waitingReads.filter((w) => w !== waiter);
        if (this.readBatch) this.readBatch.waiters = this.readBatch.waiters.filter((w) => w !== waiter);
        const why =
          confirmed === undefined
            ? "no leader confirmed"
            : `the leader confirmed index ${confirmed}, this member has applied ${this.applied}`;
        reject(new ReadTimeoutError(`no linearizable read within ${timeoutMs} ms: ${why}`));
      });
      const waiter: ReadWaiter = {
        resolve: (index) => {
          cancel();
          resolve(index);
        },
        reject: (error) => {
          cancel();
          reject(error);
        },
      };
      this.waitingReads.push(waiter);
      this.sendReads();
      this.schedule();
    });
  }

  /** What this member sees of its group (metrics). */
  stats(): ReplicationStats {
    const status = this.options.raft.status();
    const name = (id: number) => (id === 0 ? "" : (this.options.nameOf?.(id) ?? `node ${id}`));
    return {
      role: status.role,
      term: status.term,
      leader: name(status.leader),
      commitIndex: status.commit,
      appliedIndex: this.applied,
      proposalsCommitted: this.proposalsCommitted,
      proposalsDropped: this.proposalsDropped,
      leaderChanges: this.leaderChanges,
      peerRoundTripUs: status.role === "leader" ? Math.round(Math.max(0, ...this.roundTripsMs.values()) * 1_000) : 0,
      snapshotsSent: this.snapshotsSent,
      snapshotsFailed: this.snapshotsFailed,
    };
  }

  /** What became of a snapshot sent to `to` (the snapshot stream tells): the core resumes replicating to it. */
  reportSnapshot(to: NodeId, outcome: SnapshotOutcome): void {
    if (outcome === "finished") this.snapshotsSent++;
    else this.snapshotsFailed++;
    if (this.stopped) return;
    this.options.raft.reportSnapshot(to, outcome);
    this.schedule();
  }

  /** Whether this member leads now. */
  get leads(): boolean {
    return this.options.raft.role === "leader";
  }

  /**
   * If this member leads, hands leadership to the voter whose log is furthest along (§3.10) and
   * resolves once another leads, or after `timeoutMs` (false then): a clean shutdown of the leader
   * costs the others no election timeout. Resolves true at once on a member that does not lead.
   */
  async handOff(timeoutMs: number): Promise<boolean> {
    const { raft } = this.options;
    if (raft.role !== "leader" || this.stopped) return true;
    const candidates = [...raft.status().progress].filter(([id]) => raft.confState().voters.includes(id));
    const best = candidates.sort(([, a], [, b]) => b.match - a.match)[0];
    if (best === undefined) return false; // the only voter: nobody to hand over to
    raft.transferLeadership(best[0]);
    this.schedule();
    const deadline = this.timers.now() + timeoutMs;
    // Done once this member stepped down: the target got TimeoutNow and campaigns at once (it may
    // still be counting votes). Bounded by the deadline, one tick per turn.
    while (raft.role === "leader" && this.timers.now() < deadline && !this.stopped) await this.nextTick();
    return raft.role !== "leader";
  }

  /** Stops ticking and fails what waits; the storage is the caller's to close. */
  stop(): void {
    if (this.stopped) return;
    this.stopped = true;
    this.stopTicker?.();
    this.failAll(new HomeKvError("E_UNAVAILABLE", "the member is shutting down"));
    this.releaseTickWaiters();
  }

  private releaseTickWaiters(): void {
    const waiters = this.tickWaiters;
    this.tickWaiters = [];
    for (const resolve of waiters) resolve();
  }

  private unavailable(): HomeKvError | undefined {
    if (this.failure !== undefined)
      return new HomeKvError("E_DISK", `the Raft log failed: ${describeError(this.failure)}`);
    if (this.stopped) return new HomeKvError("E_UNAVAILABLE", STORE_CLOSED_MESSAGE);
    return undefined;
  }

  /**
   * Runs the loop soon, once: work that arrives while it runs makes it go round again. Soon is
   * after the turn's I/O (timers.soon), not a microtask: the proposals and messages that the
   * sockets of one turn bring (a client's calls, two followers' forwarded writes, their answers)
   * then make one Ready — one append to each follower and one log write — rather than one each.
   * With clients on every member, that was 0.89× the cluster's CPU per write (bench-member-cpu).
   */
  private schedule(): void {
    if (this.stopped) return;
    if (this.looping) {
      this.again = true;
      return;
    }
    this.looping = true;
    this.timers.soon(() => {
      this.loop().catch((error) => this.fail(error));
    });
  }

  private async loop(): Promise<void> {
    const { raft } = this.options;
    try {
      do {
        this.again = false;
        while (!this.stopped && raft.hasReady()) await this.handle(raft.ready());
      } while (this.again && !this.stopped);
    } finally {
      this.looping = false;
    }
  }

  private async handle(ready: Ready): Promise<void> {
    const { raft, storage, stateMachine } = this.options;
    // A leader's appends and heartbeats promise nothing of its own disk: they go out first, and the
    // followers write while the leader does (Raft thesis §10.2.1), rather than one fsync after the
    // other. What the leader's write makes possible (counting its own copy toward a commit) can
    // only leave in a later Ready, which waits for this one's write. Except when this Ready's own
    // entries are committed already: a lone voter counts its copy at append, and the commit index
    // its appends and read answers carry would let a learner apply (and answer) an entry that a
    // power cut of the leader then loses — those messages wait for the write too.
    const firstNew = ready.entries[0]?.index ?? Number.POSITIVE_INFINITY;
    const early = ready.snapshot ? 0 : ready.committed.findIndex((entry) => entry.index >= firstNew);
    const held = early === -1 ? ready.committed.length : early;
    const sendFirst =
      ready.snapshot === undefined &&
      held === ready.committed.length &&
      ready.messages.length > 0 &&
      ready.messages.every((m) => SENT_BEFORE_WRITE.has(m.type));
    if (sendFirst) this.send(ready.messages);
    // Committed entries this member already holds on disk are applied while it writes the new ones
    // (as etcd does): they are on a majority's disks, and waiting would add this write to every
    // commit's latency. Committed entries among the new ones (a group of one voter commits at
    // append) wait for the write: nothing is answered before it is durable.
    for (const entry of ready.committed.slice(0, held)) this.apply(entry);
    if (ready.snapshot) await storage.installSnapshot(ready.snapshot);
    await storage.persist(ready.hardState, ready.entries, ready.mustSync);
    if (this.stopped) return;
    // Only now for the others: an answer to a vote or an append promises what the disk holds.
    if (!sendFirst && ready.messages.length > 0) this.send(ready.messages);
    if (ready.snapshot) {
      await stateMachine.restore(ready.snapshot);
      this.applied = ready.snapshot.index;
      this.settleProposalsThrough(ready.snapshot.index);
    }
    for (const entry of ready.committed.slice(held)) this.apply(entry);
    for (const state of ready.readStates) this.readStateArrived(state);
    raft.advance(ready);
    this.serveReads();
    if (raft.leader !== 0 && raft.leader !== this.lastLeader) {
      if (this.lastLeader !== 0) this.leaderChanges++;
      this.lastLeader = raft.leader;
    }
  }

  /** Hands messages to the peers, noting when each heartbeat left (the round-trip metric). */
  private send(messages: readonly Message[]): void {
    const now = this.timers.now();
    for (const m of messages) if (m.type === "heartbeat") this.heartbeatsOut.set(m.to, { round: m.round, atMs: now });
    this.options.outbox.send(messages);
  }

  private apply(entry: Entry): void {
    assert(entry.index === this.applied + 1, () => `applied ${entry.index} after ${this.applied}`);
    const result = this.options.stateMachine.apply(entry);
    this.applied = entry.index;
    const waiting = this.proposals.get(entry.index);
    if (waiting === undefined) return;
    this.proposals.delete(entry.index);
    for (const proposal of waiting) {
      if (proposal.term === entry.term) {
        this.proposalsCommitted++;
        proposal.resolve(result);
      } else {
        this.proposalsDropped++;
        proposal.reject(dropped(entry.index));
      }
    }
  }

  private awaitApplied(index: number, proposal: PendingProposal<R>): void {
    const waiting = this.proposals.get(index);
    if (waiting) waiting.push(proposal);
    else this.proposals.set(index, [proposal]);
  }

  /** A snapshot replaced the log through `index`: proposals at or below it can no longer be told apart. */
  private settleProposalsThrough(index: number): void {
    for (const [at, waiting] of this.proposals) {
      if (at > index) continue;
      this.proposals.delete(at);
      for (const proposal of waiting)
        proposal.reject(
          new HomeKvError(
            "E_UNAVAILABLE",
            `outcome unknown: the write at index ${at} was overtaken by a snapshot from the leader`,
          ),
        );
    }
  }

  private sendReads(): void {
    // A batch whose every waiter gave up is forgotten: its answer, if it comes, is ignored.
    if (this.readBatch !== undefined && this.readBatch.waiters.length === 0) this.readBatch = undefined;
    if (this.readBatch !== undefined || this.waitingReads.length === 0 || this.stopped) return;
    const request = this.options.raft.readIndex();
    // No leader known yet: the waiters stay, and go out when one is (at the next tick).
    if (request === undefined) return;
    this.readBatch = { request, sentAtMs: this.timers.now(), waiters: this.waitingReads };
    this.waitingReads = [];
  }

  /** A request the leader never answered (it stepped down, the message was lost): ask again. */
  private retryUnansweredRead(): void {
    const batch = this.readBatch;
    const retryMs = this.options.readRetryMs ?? 20 * this.options.tickMs;
    if (batch === undefined || batch.index !== undefined || this.timers.now() - batch.sentAtMs < retryMs) {
      this.sendReads();
      return;
    }
    this.readBatch = undefined;
    this.waitingReads = [...batch.waiters, ...this.waitingReads];
    this.sendReads();
  }

  private readStateArrived(state: ReadState): void {
    if (this.readBatch?.request === state.request) this.readBatch.index = state.index;
  }

  private serveReads(): void {
    const batch = this.readBatch;
    if (batch?.index !== undefined && batch.index <= this.applied) {
      this.readBatch = undefined;
      for (const waiter of batch.waiters) waiter.resolve(batch.index);
    }
    this.sendReads();
  }

  private fail(error: unknown): void {
    this.failure = error;
    this.stopped = true;
    this.stopTicker?.();
    this.releaseTickWaiters();
    this.failAll(new HomeKvError("E_DISK", `the Raft log failed: ${describeError(error)}`));
    this.options.onFatal?.(error);
  }

  /**
   * Fails what waits: reads with `error`; proposals, which may still commit (they are in the log),
   * with an unknown outcome that says why.
   */
  private failAll(error: HomeKvError): void {
    const unknown = new HomeKvError(error.code, `outcome unknown: ${error.message} before the write was seen applied`);
    for (const waiting of this.proposals.values()) for (const proposal of waiting) proposal.reject(unknown);
    this.proposals.clear();
    for (const waiter of [...this.waitingReads, ...(this.readBatch?.waiters ?? [])]) waiter.reject(error);
    this.waitingReads = [];
    this.readBatch = undefined;
  }
}

/** A proposal another leader's entry replaced: not applied, so a retry is safe. */
export function dropped(index: number): HomeKvError {
  return new HomeKvError(
    "E_PROPOSAL_DROPPED",
    `the write was not applied: another leader's entry took index ${index} (retrying is safe)`,
  );
}

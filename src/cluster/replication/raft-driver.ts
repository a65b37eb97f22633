import { assert, HomeKvError } from "../../errors.ts";
import type { ReplicationStats } from "../../storage/database.ts";
import { realTimers, type Timers } from "../../timers.ts";
import type { Raft } from "../raft/raft.ts";
import type { Entry, HardState, Message, ReadState, Ready, Snapshot } from "../raft/types.ts";

/** Where a driver keeps the Raft log (DurableRaftLog; the core reads it through RaftStorage). */
export interface RaftPersistence {
  persist(hardState: HardState | undefined, entries: readonly Entry[], sync: boolean): Promise<void>;
  installSnapshot(snapshot: Snapshot): Promise<void>;
}

/** The replicated state machine: committed entries in log order, or a leader's snapshot instead of them. */
export interface ReplicatedStateMachine<R> {
  /** Every committed entry, in index order, empty and configuration entries included (they change no state). */
  apply(entry: Entry): R;
  /** Replaces the whole state with the snapshot's (a follower far behind the leader). */
  restore(snapshot: Snapshot): void;
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
  tickMs: number;
  /** The ticks, read timeouts and clock; default: the real ones (src/timers.ts). */
  timers?: Timers;
  /** The log failed (a write or sync): the driver has stopped, and the process must restart. */
  onFatal?: (error: unknown) => void;
  /** A ReadIndex request not answered this long is sent again (its leader may be gone); default 20 ticks. */
  readRetryMs?: number;
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
  private readonly proposals = new Map<number, PendingProposal<R>>();
  private tickWaiters: (() => void)[] = [];
  private waitingReads: ReadWaiter[] = [];
  private readBatch: ReadBatch | undefined;
  private applied: number;
  private looping = false;
  private again = false;
  private stopTicker: (() => void) | undefined;
  private failure: unknown;
  private stopped = false;
  private proposalsCommitted = 0;
  private proposalsDropped = 0;
  private leaderChanges = 0;
  private lastLeader = 0;
  private readonly timers: Timers;

  constructor(private readonly options: RaftDriverOptions<R>) {
    this.applied = options.raft.status().applied;
    this.timers = options.timers ?? realTimers;
  }

  start(): void {
    assert(this.stopTicker === undefined, "the driver is already running");
    this.stopTicker = this.timers.every(this.options.tickMs, () => {
      this.options.raft.tick();
      this.retryUnansweredRead();
      this.schedule();
      this.releaseTickWaiters();
    });
    this.schedule();
  }

  /** A message from a peer. */
  receive(message: Message): void {
    if (this.stopped) return;
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
      this.proposals.set(at.index, { term: at.term, resolve, reject });
    });
  }

  /**
   * Appends `data` to the leader's log and says where; nothing waits for it here (a write forwarded
   * by a follower, which waits for it to be applied there). Throws E_NOT_LEADER when this member
   * cannot take it.
   */
  submit(data: Uint8Array): { index: number; term: number } {
    const unavailable = this.unavailable();
    if (unavailable) throw unavailable;
    const { raft } = this.options;
    if (!raft.propose(data)) {
      const leader = raft.leader;
      throw new HomeKvError(
        "E_NOT_LEADER",
        leader === raft.id || leader === 0
          ? "no leader can take writes right now (an election or a leadership transfer is under way)"
          : `this member is not the leader; ${this.options.nameOf ? `member ${this.options.nameOf(leader)}` : `node ${leader}`} is`,
      );
    }
    const { lastIndex, term } = raft.status();
    this.schedule();
    return { index: lastIndex, term };
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
   * Resolves with a read index once this member has applied up to it: reads of the state machine
   * made then are linearizable (§6.4). Rejects with E_UNAVAILABLE after `timeoutMs`.
   */
  readBarrier(timeoutMs: number): Promise<number> {
    const unavailable = this.unavailable();
    if (unavailable) return Promise.reject(unavailable);
    return new Promise<number>((resolve, reject) => {
      const cancel = this.timers.after(timeoutMs, () => {
        this.waitingReads = this.waitingReads.filter((w) => w !== waiter);
        if (this.readBatch) this.readBatch.waiters = this.readBatch.waiters.filter((w) => w !== waiter);
        reject(new HomeKvError("E_UNAVAILABLE", `no linearizable read within ${timeoutMs} ms: no leader confirmed`));
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
    };
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
    // Bounded by the deadline; each turn waits one tick for the transfer's messages to go round.
    while (raft.role === "leader" && this.timers.now() < deadline && !this.stopped) {
      await new Promise<void>((resolve) => this.timers.after(this.options.tickMs, resolve));
    }
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
    if (this.failure !== undefined) return new HomeKvError("E_DISK", `the Raft log failed: ${describe(this.failure)}`);
    if (this.stopped) return new HomeKvError("E_UNAVAILABLE", "the member is shutting down");
    return undefined;
  }

  /** Runs the loop soon, once: work that arrives while it runs makes it go round again. */
  private schedule(): void {
    if (this.stopped) return;
    if (this.looping) {
      this.again = true;
      return;
    }
    this.looping = true;
    queueMicrotask(() => {
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
    const { raft, storage, stateMachine, outbox } = this.options;
    if (ready.snapshot) await storage.installSnapshot(ready.snapshot);
    await storage.persist(ready.hardState, ready.entries, ready.mustSync);
    if (this.stopped) return;
    // Only now: every message may promise what the disk holds.
    if (ready.messages.length > 0) outbox.send(ready.messages);
    if (ready.snapshot) {
      stateMachine.restore(ready.snapshot);
      this.applied = ready.snapshot.index;
      this.settleProposalsThrough(ready.snapshot.index);
    }
    for (const entry of ready.committed) this.apply(entry);
    for (const state of ready.readStates) this.readStateArrived(state);
    raft.advance(ready);
    this.serveReads();
    if (raft.leader !== 0 && raft.leader !== this.lastLeader) {
      if (this.lastLeader !== 0) this.leaderChanges++;
      this.lastLeader = raft.leader;
    }
  }

  private apply(entry: Entry): void {
    assert(entry.index === this.applied + 1, `applied ${entry.index} after ${this.applied}`);
    const result = this.options.stateMachine.apply(entry);
    this.applied = entry.index;
    const proposal = this.proposals.get(entry.index);
    if (proposal === undefined) return;
    this.proposals.delete(entry.index);
    if (proposal.term === entry.term) {
      this.proposalsCommitted++;
      proposal.resolve(result);
    } else {
      this.proposalsDropped++;
      proposal.reject(dropped(entry.index));
    }
  }

  /** A snapshot replaced the log through `index`: proposals at or below it can no longer be told apart. */
  private settleProposalsThrough(index: number): void {
    for (const [at, proposal] of this.proposals) {
      if (at > index) continue;
      this.proposals.delete(at);
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
    this.failAll(new HomeKvError("E_DISK", `the Raft log failed: ${describe(error)}`));
    this.options.onFatal?.(error);
  }

  private failAll(error: HomeKvError): void {
    for (const proposal of this.proposals.values()) proposal.reject(error);
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

function describe(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

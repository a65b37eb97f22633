import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { Raft, type RaftOptions } from "../../../src/cluster/raft/raft.ts";
import { MemoryStorage, type RaftStorage } from "../../../src/cluster/raft/storage.ts";
import type {
  ConfChange,
  Entry,
  Message,
  NodeId,
  ReadRequestId,
  Ready,
  Snapshot,
  SnapshotOutcome,
} from "../../../src/cluster/raft/types.ts";
import { nextMoveStep } from "../../../src/cluster/ring/replica-move.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import type { Operation } from "../../linearizability/history.ts";
import type { KvInput, KvOutput } from "../../linearizability/kv-model.ts";
import { ProcessFileSystem } from "./process-fs.ts";

/**
 * A deterministic Raft cluster: one seed decides every tick, message fate, crash, pause, partition,
 * proposal and read, so a failing seed replays exactly (RAFT_SEED=n). After every step it checks
 * Raft's safety properties; clients record a history of a small key-value state machine replicated
 * on top, which a test checks for linearizability; `heal()` then the liveness helpers check that
 * the cluster recovers.
 *
 * Faults: messages dropped, duplicated, delayed (so reordered) and, now and then, delivered long
 * after the election timeout; partitions, symmetric or one-way, that change; nodes paused for up to
 * several election timeouts (what was sent to them arrives when they resume); clocks that drift
 * apart; crashes. A node's log is either in memory (a crash keeps everything written) or a
 * DurableRaftLog on the in-memory file system, where a Ready's writes reach the disk only when its
 * sync completes, some ticks later: a crash before that loses them, and may tear the last write.
 */
export interface Faults {
  dropRate: number;
  duplicateRate: number;
  delayMaxTicks: number;
  /** Per message: delivered after up to `lateTicksMax` ticks instead (beyond the election timeout). */
  lateRate: number;
  lateTicksMax: number;
  crashRate: number;
  restartRate: number;
  /** Per node per tick: compact the log up to what it has applied (a snapshot). */
  compactRate: number;
  partitionRate: number;
  healRate: number;
  /** Per node per tick: frozen for up to `pauseTicksMax` ticks (a GC pause, SIGSTOP). */
  pauseRate: number;
  pauseTicksMax: number;
  /** Each node's clock runs at a rate in [1 - driftMax, 1 + driftMax] of the others'. */
  driftMax: number;
  /** Ticks a durable node's sync may take (its Ready's messages wait for it). */
  syncTicksMax: number;
}

export const HARSH: Faults = {
  dropRate: 0.1,
  duplicateRate: 0.05,
  delayMaxTicks: 3,
  lateRate: 0.01,
  lateTicksMax: 30,
  crashRate: 0.005,
  restartRate: 0.05,
  compactRate: 0.02,
  partitionRate: 0.01,
  healRate: 0.03,
  pauseRate: 0.003,
  pauseTicksMax: 30,
  driftMax: 0.25,
  syncTicksMax: 2,
};

export const CALM: Faults = {
  dropRate: 0,
  duplicateRate: 0,
  delayMaxTicks: 1,
  lateRate: 0,
  lateTicksMax: 0,
  crashRate: 0,
  restartRate: 0,
  compactRate: 0,
  partitionRate: 0,
  healRate: 0,
  pauseRate: 0,
  pauseTicksMax: 0,
  driftMax: 0,
  syncTicksMax: 0,
};

export interface SimOptions {
  /** The first voters; the other nodes start empty and wait to be added. Default: all. */
  firstVoters?: number;
  /** The leader adds learners, promotes them and removes voters at random. */
  changeMembers?: boolean;
  /** Each node's log is a DurableRaftLog on its own in-memory file system. */
  durable?: boolean;
  /**
   * The leader moves the group's voters to a target drawn at random, by the replica-move planner's
   * steps (src/cluster/ring/replica-move.ts); a new target is drawn each time one is reached.
   */
  moveReplicas?: boolean;
  /**
   * Idle groups quiesce (RaftOptions.quiesce); clients go quiet every other QUIET_PHASE_TICKS so
   * that they do, and a failure detector tells a follower when its leader has been out of reach
   * for DETECT_TICKS (what a host's closed connections and gossip do).
   */
  quiesce?: boolean;
}

const DIR = "/raft";
const KEYS = ["x", "y", "z"];
const CLIENTS = 6;
/** A client waits this long for an answer, then gives up: a write's outcome stays unknown, a read is dropped. */
const CLIENT_TIMEOUT_TICKS = 40;
/** With quiesce: clients act in every other stretch of this many ticks. */
const QUIET_PHASE_TICKS = 60;
/** With quiesce: ticks a follower's leader is out of reach (down, paused, cut off) before it is told. */
const DETECT_TICKS = 15;
/** A learner this close to the leader's log may be promoted (moveReplicas). */
const MOVE_CAUGHT_UP_ENTRIES = 4;

type KvOperation = Operation<KvInput, KvOutput>;

interface PendingWrite {
  node: SimNode;
  generation: number;
  op: KvOperation;
  sinceTick: number;
}

interface PendingRead {
  node: SimNode;
  generation: number;
  op: KvOperation;
  sinceTick: number;
  key: string;
  /** The highest log index of a write acknowledged before this read was issued. */
  mustSee: number;
  /** Set once the node got its read state: served when the node has applied this far. */
  index?: number;
}

/** A Ready a durable node is writing: its sync completes at tick `at`, then the rest is done. */
interface Persisting {
  at: number;
  ready: Ready;
  release: () => void;
  done: Promise<void>;
}

interface SimNode {
  readonly id: NodeId;
  /** The node's disk; `process` is the running process's view of it, dead after a crash. */
  readonly fs: MemoryFileSystem;
  process: ProcessFileSystem | undefined;
  storage: RaftStorage;
  raft: Raft | undefined;
  /** Bumped by every crash: work begun before it is dropped. */
  generation: number;
  /** The state machine: key → the id of the write that set it; applied index; a digest of the log applied. */
  kv: Map<string, number>;
  applied: number;
  digest: number;
  pausedUntil: number;
  /** This node's clock rate, and the fraction of a tick it is owed. */
  readonly rate: number;
  owed: number;
  persisting: Persisting | undefined;
  /** Ticks its leader has been out of its reach (quiesce). */
  unreachableTicks: number;
  /** Messages it handed to the network, lost ones included. */
  sent: number;
}

export class RaftSimulation {
  readonly nodes: SimNode[];
  tick = 0;
  private readonly random: () => number;
  private faults: Faults;
  private readonly options: SimOptions;
  /** Limits of the core drawn from the seed (small windows and messages reach more states). */
  readonly core: Pick<RaftOptions, "entriesPerMessageMax" | "inflightMessagesMax" | "inflightBytesMax">;
  private inFlight: { at: number; message: Message }[] = [];
  /** What the snapshot stream tells its sender once a snapshot is delivered or lost (etcd's ReportSnapshot). */
  private snapshotReports: { at: number; from: NodeId; to: NodeId; outcome: SnapshotOutcome }[] = [];
  /** from → to pairs that cannot deliver. */
  private blocked = new Set<string>();
  /** index → the entry applied there, by whichever node applied it first, and the state machine digest after it. */
  private readonly appliedAt = new Map<number, Entry>();
  /**
   * index → the term of the node that applied it first, then: the entry was committed in that term
   * or an earlier one (the node learned the commit from a leader of a term no later than its own).
   */
  private readonly committedBy = new Map<number, number>();
  private readonly digestAt = new Map<number, number>([[0, 0]]);
  private readonly leaderOfTerm = new Map<number, NodeId>();
  private highestAcknowledged = 0;
  /** The clock of the client history: one instant per call and per return. */
  private instant = 0;
  /** What each client is waiting for (one operation at a time per client). */
  private readonly clients: (PendingWrite | PendingRead | undefined)[] = Array.from({ length: CLIENTS });
  private readonly writes = new Map<number, PendingWrite>();
  private readonly reads = new Map<ReadRequestId, PendingRead>();
  private nextWrite = 1;
  readonly history: KvOperation[] = [];
  /** Random proposals, reads and transfers each tick; off to let the cluster settle. */
  clientsActive = true;
  readsServed = 0;
  snapshotsInstalled = 0;
  writesAcknowledged = 0;
  /** Membership changes committed, counted at their first application. */
  confChanges = 0;
  private readonly firstVoters: NodeId[];
  /** The voters the planner moves the group to (moveReplicas), and how many targets it reached. */
  private moveTarget: NodeId[] = [];
  movesCompleted = 0;
  /** The longest run of ticks one leader was asked by the planner to hand over (moveReplicas). */
  longestHandOverTicks = 0;
  private handOver: { leader: NodeId; since: number } | undefined;
  /** Ticks spent quiesced, summed over nodes (quiesce). */
  quietNodeTicks = 0;
  /** The longest run of ticks, while clients were active, with no leader of the newest term or no commit advancing while entries waited. */
  longestLeaderlessTicks = 0;
  longestCommitStallTicks = 0;
  private leaderlessTicks = 0;
  private commitStallTicks = 0;
  private lastCommit = 0;
  private leaderSeen = false;

  private constructor(
    readonly seed: number,
    size: number,
    faults: Faults,
    options: SimOptions,
  ) {
    this.random = mulberry32(seed);
    this.faults = faults;
    this.options = options;
    const pick = <T>(choices: readonly T[]): T => choices[Math.floor(this.random() * choices.length)]!;
    this.core = {
      entriesPerMessageMax: pick([1, 2, 8, 64]),
      inflightMessagesMax: pick([1, 2, 4, 256]),
      inflightBytesMax: pick([16, 256, 1 << 20]),
    };
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    this.firstVoters = ids.slice(0, options.firstVoters ?? size);
    this.nodes = ids.map((id) => ({
      id,
      fs: new MemoryFileSystem(),
      process: undefined,
      storage: new MemoryStorage(),
      raft: undefined,
      generation: 0,
      kv: new Map(),
      applied: 0,
      digest: 0,
      pausedUntil: 0,
      rate: 1 + (this.random() * 2 - 1) * faults.driftMax,
      owed: 0,
      persisting: undefined,
      unreachableTicks: 0,
      sent: 0,
    }));
  }

  static async create(seed: number, size: number, faults: Faults, options: SimOptions = {}): Promise<RaftSimulation> {
    const sim = new RaftSimulation(seed, size, faults, options);
    for (const node of sim.nodes) await sim.start(node);
    return sim;
  }

  private async start(node: SimNode): Promise<void> {
    if (this.options.durable) {
      node.process = new ProcessFileSystem(node.fs);
      node.storage = await DurableRaftLog.open(node.process, DIR);
    }
    node.raft = new Raft({
      id: node.id,
      voters: this.firstVoters,
      storage: node.storage,
      random: mulberry32(this.seed * 31 + node.id * 7919 + this.tick * 104_729 + node.generation),
      quiesce: this.options.quiesce,
      ...this.core,
    });
    // The state machine restarts from the storage's snapshot, then the log is applied again.
    const state = decodeSnapshot(node.storage.snapshot());
    node.applied = state.index;
    node.digest = state.digest;
    node.kv = state.kv;
  }

  private crash(node: SimNode): void {
    node.raft = undefined;
    node.generation++;
    node.persisting = undefined;
    // The process stops writing at once (what it had under way never lands), then the power goes.
    node.process?.kill();
    if (this.options.durable) node.fs.crash(this.random);
    // What its clients were waiting for will not come.
    for (const [c, pending] of this.clients.entries()) if (pending?.node === node) this.giveUp(c);
  }

  /** Client `c` stops waiting: a write's outcome is unknown (it stays with no return), a read is dropped (it changed nothing). */
  private giveUp(c: number): void {
    const pending = this.clients[c]!;
    this.clients[c] = undefined;
    if ("key" in pending) this.history.splice(this.history.indexOf(pending.op), 1);
  }

  leaders(): SimNode[] {
    return this.nodes.filter((node) => node.raft?.role === "leader");
  }

  private live(node: SimNode): boolean {
    return node.raft !== undefined && node.pausedUntil <= this.tick;
  }

  /** One tick of the whole cluster, with random faults and client actions. */
  async step(): Promise<void> {
    this.tick++;
    await this.randomFaults();
    const due = this.inFlight.filter((f) => f.at <= this.tick);
    this.inFlight = this.inFlight.filter((f) => f.at > this.tick);
    for (const flight of due) {
      const { message } = flight;
      const to = this.nodes[message.to - 1]!;
      // A paused node takes its messages when it resumes.
      if (to.raft && to.pausedUntil > this.tick) {
        this.inFlight.push({ at: to.pausedUntil, message });
        continue;
      }
      const delivered = to.raft !== undefined && !this.blocked.has(`${message.from}>${message.to}`);
      if (delivered) to.raft!.step(message);
      if (message.type === "snapshot") this.reportSnapshot(message, delivered ? "finished" : "failed");
    }
    const reports = this.snapshotReports.filter((r) => r.at <= this.tick);
    this.snapshotReports = this.snapshotReports.filter((r) => r.at > this.tick);
    for (const { from, to, outcome } of reports) this.nodes[from - 1]!.raft?.reportSnapshot(to, outcome);
    if (this.options.quiesce) this.detectUnreachableLeaders();
    for (const node of this.nodes) {
      if (!this.live(node)) continue;
      if (node.raft!.quiesced) this.quietNodeTicks++;
      node.owed += node.rate;
      for (; node.owed >= 1; node.owed--) node.raft!.tick();
    }
    if (this.clientsActive) this.randomClientActions();
    for (const node of this.nodes) if (this.live(node)) await this.processReady(node);
    this.checkSafety();
    if (this.clientsActive) this.trackAvailability();
  }

  async run(ticks: number): Promise<void> {
    for (let i = 0; i < ticks; i++) await this.step();
  }

  /** Ends every fault: restarts crashed nodes, resumes paused ones, heals partitions, delivers reliably. */
  async heal(): Promise<void> {
    this.faults = { ...CALM, driftMax: this.faults.driftMax };
    this.blocked.clear();
    for (const node of this.nodes) {
      node.pausedUntil = 0;
      if (!node.raft) await this.start(node);
    }
  }

  /** Proposes at the leader until one write is acknowledged; returns the ticks it took, or undefined. */
  async commitOneWrite(ticksMax: number): Promise<number | undefined> {
    const before = this.writesAcknowledged;
    for (let i = 1; i <= ticksMax; i++) {
      const leader = this.newestLeader();
      const client = this.clients.indexOf(undefined);
      if (leader && i % 5 === 1 && client !== -1) this.write(client, leader, KEYS[0]!);
      await this.step();
      if (this.writesAcknowledged > before) return i;
    }
    return undefined;
  }

  /** The nodes in the (single) leader's configuration, voters and learners. */
  private members(leader: SimNode): SimNode[] {
    const { voters, learners } = leader.raft!.confState();
    return this.nodes.filter((node) => voters.includes(node.id) || learners.includes(node.id));
  }

  /** Ticks until exactly one node leads and every member follows it, or undefined within `ticksMax`. */
  async ticksToStableLeader(ticksMax: number): Promise<number | undefined> {
    for (let i = 0; i <= ticksMax; i++) {
      const leaders = this.leaders();
      if (leaders.length === 1 && this.members(leaders[0]!).every((node) => node.raft!.leader === leaders[0]!.id))
        return i;
      await this.step();
    }
    return undefined;
  }

  /** Ticks (clients quiet) until every member has applied the leader's commit index; false if not within `ticksMax`. */
  async settles(ticksMax: number): Promise<boolean> {
    this.clientsActive = false;
    for (let i = 0; i < ticksMax; i++) {
      if (this.converged()) return true;
      await this.step();
    }
    return this.converged();
  }

  /**
   * Ticks (clients quiet) until one node leads, every member of its group is quiesced and no message
   * is in flight (quiesce), or undefined if not within `ticksMax`.
   */
  async quiesces(ticksMax: number): Promise<number | undefined> {
    this.clientsActive = false;
    for (let i = 0; i <= ticksMax; i++) {
      const leaders = this.leaders();
      const quiet = leaders.length === 1 && this.members(leaders[0]!).every((node) => node.raft!.quiesced);
      // Messages still in flight (some from the faults, up to 30 ticks late) would wake it again.
      if (quiet && this.inFlight.length === 0) return i;
      await this.step();
    }
    return undefined;
  }

  /** The members of the leader's group: how many messages they have sent so far, and which are not quiesced. */
  groupActivity(): { sent: number; awake: NodeId[] } {
    const [leader] = this.leaders();
    const members = leader ? this.members(leader) : [];
    return {
      sent: members.reduce((sum, node) => sum + node.sent, 0),
      awake: members.filter((node) => !node.raft!.quiesced).map((node) => node.id),
    };
  }

  /** Every member has applied everything the leader committed. */
  converged(): boolean {
    const leaders = this.leaders();
    if (leaders.length !== 1) return false;
    const commit = leaders[0]!.raft!.status().commit;
    return this.members(leaders[0]!).every((node) => node.applied === commit);
  }

  private async randomFaults(): Promise<void> {
    const f = this.faults;
    for (const node of this.nodes) {
      if (node.raft && this.random() < f.crashRate) this.crash(node);
      else if (!node.raft && this.random() < f.restartRate) await this.start(node);
      else if (this.live(node) && this.random() < f.pauseRate)
        node.pausedUntil = this.tick + 1 + Math.floor(this.random() * f.pauseTicksMax);
      else if (
        this.live(node) &&
        !node.persisting &&
        node.applied > node.storage.snapshot().index &&
        this.random() < f.compactRate
      )
        await this.compact(node);
    }
    if (this.random() < f.partitionRate) this.partition();
    if (this.blocked.size > 0 && this.random() < f.healRate) this.blocked.clear();
  }

  private async compact(node: SimNode): Promise<void> {
    const data = encodeSnapshot(node.applied, node.digest, node.kv);
    const conf = node.raft!.confState(node.applied);
    if (node.storage instanceof DurableRaftLog) await node.storage.compact(node.applied, data, conf);
    else (node.storage as MemoryStorage).compact(node.applied, data, conf);
  }

  /** A random cut: two sides, blocked both ways or (one time in three) one way only. */
  private partition(): void {
    this.blocked.clear();
    const side = new Set(this.nodes.filter(() => this.random() < 0.5).map((node) => node.id));
    const oneWay = this.random() < 1 / 3;
    for (const a of this.nodes) {
      for (const b of this.nodes) {
        if (side.has(a.id) && !side.has(b.id)) {
          this.blocked.add(`${a.id}>${b.id}`);
          if (!oneWay) this.blocked.add(`${b.id}>${a.id}`);
        }
      }
    }
  }

  /**
   * The failure detector of a host: a follower whose leader has been out of reach for DETECT_TICKS
   * is told so, and a leader learns at every tick which members are down or cut off from it, either
   * way (what its closed connections say; a one-way cut makes it take a member for down that still
   * hears it).
   */
  private detectUnreachableLeaders(): void {
    for (const node of this.nodes) {
      if (!this.live(node)) continue;
      if (node.raft!.role === "leader")
        node.raft!.updateDown(
          (id) =>
            !this.live(this.nodes[id - 1]!) ||
            this.blocked.has(`${node.id}>${id}`) ||
            this.blocked.has(`${id}>${node.id}`),
        );
      const leader = node.raft!.leader;
      const reachable =
        leader === 0 ||
        leader === node.id ||
        (this.live(this.nodes[leader - 1]!) && !this.blocked.has(`${leader}>${node.id}`));
      node.unreachableTicks = reachable ? 0 : node.unreachableTicks + 1;
      if (node.unreachableTicks >= DETECT_TICKS) {
        node.unreachableTicks = 0;
        node.raft!.leaderUnreachable();
      }
    }
  }

  private randomClientActions(): void {
    const live = this.nodes.filter((node) => this.live(node));
    if (live.length === 0) return;
    if (this.options.quiesce && Math.floor(this.tick / QUIET_PHASE_TICKS) % 2 === 1) return;
    const pick = <T>(list: readonly T[]) => list[Math.floor(this.random() * list.length)]!;
    for (let c = 0; c < CLIENTS; c++) {
      const pending = this.clients[c];
      if (pending && this.tick - pending.sinceTick > CLIENT_TIMEOUT_TICKS) this.giveUp(c);
      if (this.clients[c] !== undefined || this.random() >= 0.15) continue;
      if (this.random() < 0.5) this.write(c, pick(live), pick(KEYS));
      else this.read(c, pick(live), pick(KEYS));
    }
    if (this.random() < 0.005) {
      const leader = this.leaders()[0];
      if (leader) leader.raft!.transferLeadership(1 + Math.floor(this.random() * this.nodes.length));
    }
    if (this.options.changeMembers && this.random() < 0.02) {
      const leader = this.leaders()[0];
      if (leader) leader.raft!.proposeConfChange(this.randomChange(leader));
    }
    if (this.options.moveReplicas) this.moveStep();
  }

  /** The newest leader takes the planner's next step; a change refused now (one in flight) is proposed again next tick. */
  private moveStep(): void {
    const leader = this.newestLeader();
    if (!leader) return;
    if (this.moveTarget.length === 0) this.moveTarget = this.randomTarget();
    const status = leader.raft!.status();
    const step = nextMoveStep(
      {
        conf: leader.raft!.confState(),
        leader: leader.id,
        lastIndex: status.lastIndex,
        match: new Map([...status.progress].map(([id, progress]) => [id, progress.match])),
        // What a failure detector would say: up, and not cut off from the leader.
        active: new Set(
          this.nodes
            .filter((node) => this.live(node) && !this.blocked.has(`${node.id}>${leader.id}`))
            .map((node) => node.id),
        ),
      },
      this.moveTarget,
      MOVE_CAUGHT_UP_ENTRIES,
    );
    if (step.kind === "transfer-leader") {
      // A leader handing over refuses writes: how long one leader keeps asking for a hand-over is
      // how long the group takes no write, which the commit-stall count cannot see (nothing waits).
      if (this.handOver?.leader !== leader.id) this.handOver = { leader: leader.id, since: this.tick };
      this.longestHandOverTicks = Math.max(this.longestHandOverTicks, this.tick - this.handOver.since);
      leader.raft!.transferLeadership(step.to);
      return;
    }
    this.handOver = undefined;
    if (step.kind === "done") {
      this.movesCompleted++;
      this.moveTarget = [];
    } else if (step.kind === "change") leader.raft!.proposeConfChange(step.change);
  }

  /** One to all nodes (at most five), drawn from every node of the simulation. */
  private randomTarget(): NodeId[] {
    const ids = this.nodes.map((node) => node.id);
    for (let i = ids.length - 1; i > 0; i--) {
      const j = Math.floor(this.random() * (i + 1));
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    return ids.slice(0, 1 + Math.floor(this.random() * Math.min(5, ids.length)));
  }

  /** The leader of the newest term, if any node leads it. */
  private newestLeader(): SimNode | undefined {
    const newest = Math.max(...this.nodes.map((n) => n.raft?.term ?? 0));
    return this.leaders().find((node) => node.raft!.term === newest);
  }

  /** Counts the runs of ticks without a leader of the newest term, and with entries waiting on a commit that does not move. */
  private trackAvailability(): void {
    const leader = this.newestLeader();
    // The first election is not a loss of availability: counting starts once there was a leader.
    this.leaderSeen ||= leader !== undefined;
    if (!this.leaderSeen) return;
    this.leaderlessTicks = leader ? 0 : this.leaderlessTicks + 1;
    this.longestLeaderlessTicks = Math.max(this.longestLeaderlessTicks, this.leaderlessTicks);
    const status = leader?.raft?.status();
    const waiting = status !== undefined && status.lastIndex > status.commit && status.commit === this.lastCommit;
    this.commitStallTicks = waiting ? this.commitStallTicks + 1 : 0;
    this.longestCommitStallTicks = Math.max(this.longestCommitStallTicks, this.commitStallTicks);
    if (status) this.lastCommit = status.commit;
  }

  /** Grow a node by one step (none → learner → voter) or remove a voter. */
  private randomChange(leader: SimNode): ConfChange {
    const { voters, learners } = leader.raft!.confState();
    const node = 1 + Math.floor(this.random() * this.nodes.length);
    if (learners.includes(node)) return { type: "addVoter", node };
    if (!voters.includes(node)) return { type: "addLearner", node };
    return { type: "remove", node };
  }

  /** Client `c` writes a new value (the write's id) to `key` through `node`: refused at once unless it leads. */
  write(c: number, node: SimNode, key: string): void {
    const id = this.nextWrite++;
    if (!node.raft!.propose(encodeWrite(id, key))) return;
    const op: KvOperation = {
      client: c,
      input: { op: "put", records: [{ key, value: String(id) }] },
      call: ++this.instant,
      ret: Number.POSITIVE_INFINITY,
    };
    this.history.push(op);
    const pending = { node, generation: node.generation, op, sinceTick: this.tick };
    this.writes.set(id, pending);
    this.clients[c] = pending;
  }

  /** Client `c` reads `key` through `node` (ReadIndex); no read is made while no leader is known. */
  read(c: number, node: SimNode, key: string): void {
    const request = node.raft!.readIndex();
    if (request === undefined) return;
    const op: KvOperation = {
      client: c,
      input: { op: "get", keys: [key] },
      call: ++this.instant,
      ret: Number.POSITIVE_INFINITY,
    };
    this.history.push(op);
    const pending: PendingRead = {
      node,
      generation: node.generation,
      op,
      sinceTick: this.tick,
      key,
      mustSee: this.highestAcknowledged,
    };
    this.reads.set(request, pending);
    this.clients[c] = pending;
  }

  private async processReady(node: SimNode): Promise<void> {
    const raft = node.raft!;
    if (node.persisting) {
      if (node.persisting.at <= this.tick) await this.finishReady(node);
      return;
    }
    if (!raft.hasReady()) return;
    const ready = raft.ready();
    const storage = node.storage;
    if (storage instanceof DurableRaftLog) {
      // Written now, durable only once the sync completes: a crash before then loses what it did not cover.
      const release = node.fs.holdSyncs();
      const generation = node.generation;
      const done = (async () => {
        if (ready.snapshot) await storage.installSnapshot(ready.snapshot);
        await storage.persist(ready.hardState, ready.entries, ready.mustSync);
      })().catch((error) => {
        // Cut short by a crash (the process's files fail): nobody waits for it any more.
        if (node.generation === generation) throw error;
      });
      node.persisting = {
        at: this.tick + Math.floor(this.random() * (this.faults.syncTicksMax + 1)),
        ready,
        release,
        done,
      };
      if (node.persisting.at <= this.tick) await this.finishReady(node);
      return;
    }
    const memory = storage as MemoryStorage;
    if (ready.snapshot) memory.applySnapshot(ready.snapshot);
    // Persist before sending: a crash after this point keeps what the messages promise.
    if (ready.hardState) memory.setHardState(ready.hardState);
    memory.append(ready.entries);
    this.afterPersist(node, ready);
  }

  private async finishReady(node: SimNode): Promise<void> {
    const { ready, release, done } = node.persisting!;
    const generation = node.generation;
    release();
    await done;
    if (node.generation !== generation) return;
    node.persisting = undefined;
    this.afterPersist(node, ready);
  }

  /** What follows the disk: install a snapshot in the state machine, send, apply, serve reads, advance. */
  private afterPersist(node: SimNode, ready: Ready): void {
    if (ready.snapshot) this.install(node, ready.snapshot);
    for (const message of ready.messages) this.transmit(message);
    for (const entry of ready.committed) this.apply(node, entry);
    for (const state of ready.readStates) {
      const read = this.reads.get(state.request);
      this.check(read?.node === node, `node ${node.id} got a read state for ${state.request}, not its own`);
      this.check(
        state.index >= read!.mustSee,
        `read ${state.request} at node ${node.id} got read index ${state.index}, below the acknowledged write at ${read!.mustSee}`,
      );
      read!.index = state.index;
    }
    this.serveReads(node);
    node.raft!.advance(ready);
  }

  /** Reads whose index this node has applied are answered from its state machine. */
  private serveReads(node: SimNode): void {
    for (const [request, read] of this.reads) {
      if (read.node !== node || read.index === undefined || read.index > node.applied) continue;
      this.reads.delete(request);
      if (read.generation !== node.generation || this.clients[read.op.client as number] !== read) continue;
      const value = node.kv.get(read.key);
      read.op.output = { values: [value === undefined ? null : String(value)] };
      read.op.ret = ++this.instant;
      this.clients[read.op.client as number] = undefined;
      this.readsServed++;
    }
  }

  private reportSnapshot(message: Message, outcome: SnapshotOutcome): void {
    const at = this.tick + 1 + Math.floor(this.random() * this.faults.delayMaxTicks);
    this.snapshotReports.push({ at, from: message.from, to: message.to, outcome });
  }

  private transmit(message: Message): void {
    this.nodes[message.from - 1]!.sent++;
    const f = this.faults;
    if (this.random() < f.dropRate) {
      if (message.type === "snapshot") this.reportSnapshot(message, "failed");
      return;
    }
    const copies = this.random() < f.duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++) {
      const late = this.random() < f.lateRate;
      const delay = late
        ? 1 + Math.floor(this.random() * f.lateTicksMax)
        : 1 + Math.floor(this.random() * f.delayMaxTicks);
      this.inFlight.push({ at: this.tick + delay, message });
    }
  }

  /** A snapshot from the leader must be exactly the state every node reached at its index. */
  private install(node: SimNode, snapshot: Snapshot): void {
    const state = decodeSnapshot(snapshot);
    this.check(
      state.index === snapshot.index && this.digestAt.get(state.index) === state.digest,
      `node ${node.id} got a snapshot at ${snapshot.index} unlike the state applied there`,
    );
    this.snapshotsInstalled++;
    node.applied = state.index;
    node.digest = state.digest;
    node.kv = state.kv;
  }

  private apply(node: SimNode, entry: Entry): void {
    this.check(entry.index === node.applied + 1, `node ${node.id} applied ${entry.index} after ${node.applied}`);
    node.applied = entry.index;
    node.digest = mix(node.digest, entry);
    const digest = this.digestAt.get(entry.index);
    this.check(
      digest === undefined || digest === node.digest,
      `node ${node.id} reached another state at ${entry.index}`,
    );
    this.digestAt.set(entry.index, node.digest);
    const first = this.appliedAt.get(entry.index);
    if (!first && entry.conf) this.confChanges++;
    if (first) {
      this.check(
        first.term === entry.term && sameData(first.data, entry.data) && sameConf(first, entry),
        `node ${node.id} applied a different entry at ${entry.index}: term ${entry.term} vs ${first.term}`,
      );
    } else {
      this.appliedAt.set(entry.index, entry);
      this.committedBy.set(entry.index, node.raft!.term);
    }
    const write = decodeWrite(entry.data);
    if (write === undefined) return;
    node.kv.set(write.key, write.id);
    // The client hears back from the node it wrote through, once that node has applied the write.
    const pending = this.writes.get(write.id);
    if (pending?.node === node && pending.generation === node.generation) {
      this.writes.delete(write.id);
      if (this.clients[pending.op.client as number] === pending) this.clients[pending.op.client as number] = undefined;
      pending.op.ret = ++this.instant;
      this.highestAcknowledged = Math.max(this.highestAcknowledged, entry.index);
      this.writesAcknowledged++;
    }
  }

  private checkSafety(): void {
    for (const leader of this.leaders()) {
      const raft = leader.raft!;
      const known = this.leaderOfTerm.get(raft.term);
      this.check(
        known === undefined || known === leader.id,
        `two leaders in term ${raft.term}: ${known} and ${leader.id}`,
      );
      if (known === undefined) {
        this.leaderOfTerm.set(raft.term, leader.id);
        // Leader completeness: a new leader holds every entry committed before its term. Not one
        // committed in its term or later: a candidate whose votes were delayed can win an old term
        // after a leader of a later term committed entries it never saw (it can commit nothing).
        const { snapshotIndex, lastIndex } = raft.status();
        for (const [index, entry] of this.appliedAt) {
          if (index <= snapshotIndex) continue; // in its snapshot, checked when installed or applied
          if (this.committedBy.get(index)! >= raft.term) continue;
          this.check(
            index <= lastIndex && raft.termAt(index) === entry.term,
            `leader ${leader.id} of term ${raft.term} lacks committed entry ${index}`,
          );
        }
      }
    }
    if (this.tick % 25 === 0) this.checkLogMatching();
  }

  /** Log matching: two logs with an entry of the same index and term are identical up to it. */
  checkLogMatching(): void {
    const logs = this.nodes.map((node) =>
      node.storage.entries(node.storage.firstIndex(), node.storage.lastIndex() + 1),
    );
    for (let a = 0; a < logs.length; a++) {
      for (let b = a + 1; b < logs.length; b++) {
        // Compare where both hold entries (their snapshots may start at different indexes).
        const byIndex = (log: Entry[]) => new Map(log.map((entry) => [entry.index, entry]));
        const [x, y] = [byIndex(logs[a]!), byIndex(logs[b]!)];
        const shared = [...x.keys()].filter((index) => y.has(index)).sort((p, q) => q - p);
        const agreed = shared.find((index) => x.get(index)!.term === y.get(index)!.term);
        if (agreed === undefined) continue;
        for (const index of shared.filter((i) => i <= agreed)) {
          const [ex, ey] = [x.get(index)!, y.get(index)!];
          this.check(
            ex.term === ey.term && sameData(ex.data, ey.data),
            `logs of ${a + 1} and ${b + 1} match at ${agreed} but differ at ${index}`,
          );
        }
      }
    }
  }

  private check(condition: boolean, what: string): void {
    if (!condition) throw new Error(`tick ${this.tick}: ${what}`);
  }
}

/** The state machine digest after one more entry (FNV-1a over its index, term and data). */
function mix(digest: number, entry: Entry): number {
  let h = (digest ^ entry.index) >>> 0;
  h = Math.imul(h ^ entry.term, 16777619) >>> 0;
  for (const byte of entry.data ?? []) h = Math.imul(h ^ byte, 16777619) >>> 0;
  return h;
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeSnapshot(index: number, digest: number, kv: Map<string, number>): Uint8Array {
  return encoder.encode(JSON.stringify({ index, digest, kv: [...kv] }));
}

function decodeSnapshot(snapshot: Snapshot): { index: number; digest: number; kv: Map<string, number> } {
  if (snapshot.data.byteLength === 0) return { index: 0, digest: 0, kv: new Map() };
  const { index, digest, kv } = JSON.parse(decoder.decode(snapshot.data));
  return { index, digest, kv: new Map(kv) };
}

function encodeWrite(id: number, key: string): Uint8Array {
  return encoder.encode(`${id}=${key}`);
}

function decodeWrite(data: Uint8Array | null): { id: number; key: string } | undefined {
  if (data === null) return undefined;
  const [id, key] = decoder.decode(data).split("=");
  return { id: Number(id), key: key! };
}

function sameConf(a: Entry, b: Entry): boolean {
  return a.conf?.type === b.conf?.type && a.conf?.node === b.conf?.node;
}

function sameData(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/**
 * Runs `run(seed)` for the seeds of RAFT_SEED (one), or `count` of them (RAFT_SIM_SEEDS overrides it)
 * from RAFT_SIM_FIRST_SEED (default 1: CI's fixed set; the soak starts past it); a failure names its seed.
 */
export async function forEachSeed(
  scenario: string,
  count: number,
  run: (seed: number) => Promise<void>,
): Promise<number> {
  const only = process.env.RAFT_SEED;
  const seeds =
    only !== undefined
      ? [Number(only)]
      : Array.from(
          { length: Number(process.env.RAFT_SIM_SEEDS ?? count) },
          (_, i) => i + Number(process.env.RAFT_SIM_FIRST_SEED ?? 1),
        );
  for (const seed of seeds) {
    try {
      await run(seed);
    } catch (error) {
      throw new Error(
        `${scenario}, seed ${seed} (replay: RAFT_SEED=${seed} bun test test/cluster/raft): ${error instanceof Error ? error.message : error}`,
        { cause: error },
      );
    }
  }
  return seeds.length;
}

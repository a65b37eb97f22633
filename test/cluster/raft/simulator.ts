import { Raft } from "../../../src/cluster/raft/raft.ts";
import { MemoryStorage } from "../../../src/cluster/raft/storage.ts";
import type { ConfChange, Entry, Message, NodeId, Snapshot, SnapshotOutcome } from "../../../src/cluster/raft/types.ts";
import { mulberry32 } from "../../../src/random.ts";

/**
 * A deterministic Raft cluster: one seed decides every tick, message fate, crash, partition,
 * proposal and read, so a failing seed replays exactly (RAFT_SEED=n). After every step it checks
 * Raft's safety properties; `heal()` then `runUntilQuiet()` check liveness.
 *
 * Faults: messages dropped, duplicated and delayed (so reordered); partitions, symmetric or one-way,
 * that change; crashes that lose everything not persisted (a node restarts from its storage alone).
 */
export interface Faults {
  dropRate: number;
  duplicateRate: number;
  delayMaxTicks: number;
  crashRate: number;
  restartRate: number;
  /** Per node per tick: compact the log up to what it has applied (a snapshot). */
  compactRate: number;
  partitionRate: number;
  healRate: number;
}

export const HARSH: Faults = {
  dropRate: 0.1,
  duplicateRate: 0.05,
  delayMaxTicks: 3,
  crashRate: 0.005,
  restartRate: 0.05,
  compactRate: 0.02,
  partitionRate: 0.01,
  healRate: 0.03,
};
export const CALM: Faults = {
  dropRate: 0,
  duplicateRate: 0,
  delayMaxTicks: 1,
  crashRate: 0,
  restartRate: 0,
  compactRate: 0,
  partitionRate: 0,
  healRate: 0,
};

interface SimNode {
  readonly id: NodeId;
  readonly storage: MemoryStorage;
  raft: Raft | undefined;
  /** The state machine: the index applied up to, and a digest of every entry applied (what a snapshot holds). */
  applied: number;
  digest: number;
}

interface PendingRead {
  node: NodeId;
  /** The highest log index of a write acknowledged before this read was issued. */
  mustSee: number;
}

export class RaftSimulation {
  readonly nodes: SimNode[];
  tick = 0;
  private readonly random: () => number;
  private faults: Faults;
  private inFlight: { at: number; message: Message }[] = [];
  /** What the snapshot stream tells its sender once a snapshot is delivered or lost (etcd's ReportSnapshot). */
  private snapshotReports: { at: number; from: NodeId; to: NodeId; outcome: SnapshotOutcome }[] = [];
  /** from → to pairs that cannot deliver. */
  private blocked = new Set<string>();
  /** index → the entry applied there, by whichever node applied it first, and the state machine digest after it. */
  private readonly appliedAt = new Map<number, Entry>();
  private readonly digestAt = new Map<number, number>([[0, 0]]);
  private readonly leaderOfTerm = new Map<number, NodeId>();
  /** Write id → its index, once the node that proposed it has applied it (the client's acknowledgement). */
  private readonly acknowledged = new Map<number, number>();
  private highestAcknowledged = 0;
  private readonly proposals = new Map<number, NodeId>();
  private readonly reads = new Map<string, PendingRead>();
  private nextWrite = 1;
  /** Random proposals, reads and transfers each tick; off to let the cluster settle. */
  clientsActive = true;
  readsServed = 0;
  snapshotsInstalled = 0;
  writesAcknowledged = 0;

  /** Membership changes committed, counted at their first application. */
  confChanges = 0;
  private readonly firstVoters: NodeId[];
  private readonly changeMembers: boolean;

  /**
   * `firstVoters` nodes form the group; the others start empty and wait to be added. With
   * `changeMembers`, the leader adds learners, promotes them and removes voters at random.
   */
  constructor(
    readonly seed: number,
    size: number,
    faults: Faults,
    options: { firstVoters?: number; changeMembers?: boolean } = {},
  ) {
    this.random = mulberry32(seed);
    this.faults = faults;
    this.changeMembers = options.changeMembers ?? false;
    const ids = Array.from({ length: size }, (_, i) => i + 1);
    this.firstVoters = ids.slice(0, options.firstVoters ?? size);
    this.nodes = ids.map((id) => ({ id, storage: new MemoryStorage(), raft: undefined, applied: 0, digest: 0 }));
    for (const node of this.nodes) this.start(node);
  }

  private start(node: SimNode): void {
    node.raft = new Raft({
      id: node.id,
      voters: this.firstVoters,
      storage: node.storage,
      random: mulberry32(this.seed * 31 + node.id * 7919 + this.tick),
    });
    // The state machine restarts from the storage's snapshot, then the log is applied again.
    const snapshot = node.storage.snapshot();
    node.applied = snapshot.index;
    node.digest = decodeSnapshot(snapshot).digest;
  }

  leaders(): SimNode[] {
    return this.nodes.filter((node) => node.raft?.role === "leader");
  }

  /** One tick of the whole cluster, with random faults and client actions. */
  step(): void {
    this.tick++;
    this.randomFaults();
    const due = this.inFlight.filter((f) => f.at <= this.tick);
    this.inFlight = this.inFlight.filter((f) => f.at > this.tick);
    for (const { message } of due) {
      const to = this.nodes[message.to - 1]!;
      const delivered = to.raft !== undefined && !this.blocked.has(`${message.from}>${message.to}`);
      if (delivered) to.raft!.step(message);
      if (message.type === "snapshot") this.reportSnapshot(message, delivered ? "finished" : "failed");
    }
    const reports = this.snapshotReports.filter((r) => r.at <= this.tick);
    this.snapshotReports = this.snapshotReports.filter((r) => r.at > this.tick);
    for (const { from, to, outcome } of reports) this.nodes[from - 1]!.raft?.reportSnapshot(to, outcome);
    for (const node of this.nodes) node.raft?.tick();
    if (this.clientsActive) this.randomClientActions();
    for (const node of this.nodes) this.processReady(node);
    this.checkSafety();
  }

  run(ticks: number): void {
    for (let i = 0; i < ticks; i++) this.step();
  }

  /** Ends every fault: restarts crashed nodes, heals partitions, delivers reliably. */
  heal(): void {
    this.faults = CALM;
    this.blocked.clear();
    for (const node of this.nodes) if (!node.raft) this.start(node);
  }

  /** Proposes at the leader until one write is acknowledged; returns the ticks it took, or undefined. */
  commitOneWrite(ticksMax: number): number | undefined {
    const before = this.writesAcknowledged;
    for (let i = 1; i <= ticksMax; i++) {
      const leader = this.leaders().find(
        (node) => node.raft!.term === Math.max(...this.nodes.map((n) => n.raft?.term ?? 0)),
      );
      if (leader && i % 5 === 1) this.propose(leader);
      this.step();
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
  ticksToStableLeader(ticksMax: number): number | undefined {
    for (let i = 0; i <= ticksMax; i++) {
      const leaders = this.leaders();
      if (leaders.length === 1 && this.members(leaders[0]!).every((node) => node.raft!.leader === leaders[0]!.id))
        return i;
      this.step();
    }
    return undefined;
  }

  /** Ticks (clients quiet) until every member has applied the leader's commit index; false if not within `ticksMax`. */
  settles(ticksMax: number): boolean {
    this.clientsActive = false;
    for (let i = 0; i < ticksMax; i++) {
      if (this.converged()) return true;
      this.step();
    }
    return this.converged();
  }

  /** Every member has applied everything the leader committed. */
  converged(): boolean {
    const leaders = this.leaders();
    if (leaders.length !== 1) return false;
    const commit = leaders[0]!.raft!.status().commit;
    return this.members(leaders[0]!).every((node) => node.applied === commit);
  }

  private randomFaults(): void {
    const f = this.faults;
    for (const node of this.nodes) {
      if (node.raft && this.random() < f.crashRate) node.raft = undefined;
      else if (!node.raft && this.random() < f.restartRate) this.start(node);
      else if (node.raft && node.applied > node.storage.snapshot().index && this.random() < f.compactRate) {
        node.storage.compact(
          node.applied,
          encodeSnapshot(node.applied, node.digest),
          node.raft.confState(node.applied),
        );
      }
    }
    if (this.random() < f.partitionRate) this.partition();
    if (this.blocked.size > 0 && this.random() < f.healRate) this.blocked.clear();
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

  private randomClientActions(): void {
    const live = this.nodes.filter((node) => node.raft);
    if (live.length === 0) return;
    const pick = () => live[Math.floor(this.random() * live.length)]!;
    if (this.random() < 0.3) this.propose(pick());
    if (this.random() < 0.1) this.read(pick());
    if (this.random() < 0.005) {
      const leader = this.leaders()[0];
      if (leader) leader.raft!.transferLeadership(1 + Math.floor(this.random() * this.nodes.length));
    }
    if (this.changeMembers && this.random() < 0.02) {
      const leader = this.leaders()[0];
      if (leader) leader.raft!.proposeConfChange(this.randomChange(leader));
    }
  }

  /** Grow a node by one step (none → learner → voter) or remove a voter. */
  private randomChange(leader: SimNode): ConfChange {
    const { voters, learners } = leader.raft!.confState();
    const node = 1 + Math.floor(this.random() * this.nodes.length);
    if (learners.includes(node)) return { type: "addVoter", node };
    if (!voters.includes(node)) return { type: "addLearner", node };
    return { type: "remove", node };
  }

  propose(node: SimNode): void {
    const write = this.nextWrite++;
    if (node.raft!.propose(encodeWrite(write))) this.proposals.set(write, node.id);
  }

  read(node: SimNode): void {
    const request = node.raft!.readIndex();
    if (request !== undefined) this.reads.set(request, { node: node.id, mustSee: this.highestAcknowledged });
  }

  private processReady(node: SimNode): void {
    const raft = node.raft;
    if (!raft?.hasReady()) return;
    const ready = raft.ready();
    if (ready.snapshot) this.install(node, ready.snapshot);
    // Persist before sending: a crash after this point keeps what the messages promise.
    if (ready.hardState) node.storage.setHardState(ready.hardState);
    node.storage.append(ready.entries);
    for (const message of ready.messages) this.transmit(message);
    for (const entry of ready.committed) this.apply(node, entry);
    for (const state of ready.readStates) {
      const read = this.reads.get(state.request);
      this.check(read?.node === node.id, `node ${node.id} got a read state for ${state.request}, not its own`);
      this.reads.delete(state.request);
      this.check(
        state.index >= read!.mustSee,
        `read ${state.request} at node ${node.id} got read index ${state.index}, below the acknowledged write at ${read!.mustSee}`,
      );
      this.readsServed++;
    }
    raft.advance(ready);
  }

  private reportSnapshot(message: Message, outcome: SnapshotOutcome): void {
    const at = this.tick + 1 + Math.floor(this.random() * this.faults.delayMaxTicks);
    this.snapshotReports.push({ at, from: message.from, to: message.to, outcome });
  }

  private transmit(message: Message): void {
    const f = this.faults;
    if (this.random() < f.dropRate) {
      if (message.type === "snapshot") this.reportSnapshot(message, "failed");
      return;
    }
    const copies = this.random() < f.duplicateRate ? 2 : 1;
    for (let i = 0; i < copies; i++)
      this.inFlight.push({ at: this.tick + 1 + Math.floor(this.random() * f.delayMaxTicks), message });
  }

  /** A snapshot from the leader must be exactly the state every node reached at its index. */
  private install(node: SimNode, snapshot: Snapshot): void {
    const { index, digest } = decodeSnapshot(snapshot);
    this.check(
      index === snapshot.index && this.digestAt.get(index) === digest,
      `node ${node.id} got a snapshot at ${snapshot.index} unlike the state applied there`,
    );
    node.storage.applySnapshot(snapshot);
    this.snapshotsInstalled++;
    node.applied = index;
    node.digest = digest;
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
    }
    const write = decodeWrite(entry.data);
    if (write !== undefined && this.proposals.get(write) === node.id && !this.acknowledged.has(write)) {
      this.acknowledged.set(write, entry.index);
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
        // Leader completeness: a new leader holds every entry committed before its term.
        for (const [index, entry] of this.appliedAt) {
          if (index <= raft.status().snapshotIndex) continue; // in its snapshot, checked when installed or applied
          this.check(
            index <= raft.status().lastIndex && raft.termAt(index) === entry.term,
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

function encodeSnapshot(index: number, digest: number): Uint8Array {
  const bytes = new Uint8Array(12);
  const view = new DataView(bytes.buffer);
  view.setFloat64(0, index);
  view.setUint32(8, digest);
  return bytes;
}

function decodeSnapshot(snapshot: Snapshot): { index: number; digest: number } {
  if (snapshot.data.byteLength === 0) return { index: 0, digest: 0 };
  const view = new DataView(snapshot.data.buffer, snapshot.data.byteOffset, snapshot.data.byteLength);
  return { index: view.getFloat64(0), digest: view.getUint32(8) };
}

function encodeWrite(id: number): Uint8Array {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, id);
  return bytes;
}

function decodeWrite(data: Uint8Array | null): number | undefined {
  return data === null ? undefined : new DataView(data.buffer, data.byteOffset, 4).getUint32(0);
}

function sameConf(a: Entry, b: Entry): boolean {
  return a.conf?.type === b.conf?.type && a.conf?.node === b.conf?.node;
}

function sameData(a: Uint8Array | null, b: Uint8Array | null): boolean {
  if (a === null || b === null) return a === b;
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

/** Runs `run(seed)` for seeds from RAFT_SEED (one) or 1..count (RAFT_SIM_SEEDS overrides count); a failure names its seed. */
export function forEachSeed(scenario: string, count: number, run: (seed: number) => void): number {
  const only = process.env.RAFT_SEED;
  const seeds =
    only !== undefined
      ? [Number(only)]
      : Array.from({ length: Number(process.env.RAFT_SIM_SEEDS ?? count) }, (_, i) => i + 1);
  for (const seed of seeds) {
    try {
      run(seed);
    } catch (error) {
      throw new Error(
        `${scenario}, seed ${seed} (replay: RAFT_SEED=${seed} bun test test/cluster/raft): ${error instanceof Error ? error.message : error}`,
        { cause: error },
      );
    }
  }
  return seeds.length;
}

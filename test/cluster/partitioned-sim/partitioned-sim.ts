import { META_GROUP } from "../../../src/cluster/meta/meta-group.ts";
import { changeNodes, type NodeChange } from "../../../src/cluster/meta/node-changes.ts";
import type { MemberAddress } from "../../../src/cluster/raft/types.ts";
import { partitionGroupId } from "../../../src/cluster/txn/partition-group.ts";
import { HomeKvError } from "../../../src/errors.ts";
import type { PartitionedMember } from "../../../src/node/partitioned-member.ts";
import { mulberry32 } from "../../../src/random.ts";
import { type Outcome, overClientLink } from "../replication/sim/client-link.ts";
import { calm, type FaultRates } from "../replication/sim/fault-draw.ts";
import { SeededSimulation } from "../replication/sim/seeded-simulation.ts";
import type { NetworkFaults } from "../replication/sim/sim-network.ts";
import { Clients, type ClientWorld, type NodeApi } from "./clients.ts";
import { CommittedTerms } from "./committed-terms.ts";
import { clusterSettled } from "./settled.ts";
import { type NodeSettings, SimNode } from "./sim-node.ts";

/** Faults of a run: the network's, and rates per node (partitions and resets: per cluster) per virtual second. */
export interface PsimFaults extends NetworkFaults, FaultRates {
  /** A node crashed or stopped starts again after up to this long. */
  restartMsMax: number;
  /** An answer lost on its way to the client: the client sees no outcome. */
  answerLostRate: number;
}

/** Faults now and then: a crash, a pause, a partition every few seconds of the cluster's. */
const MODERATE: PsimFaults = {
  delayMsMax: 5,
  lateRate: 0.02,
  lateMsMax: 400,
  lostOnBreakRate: 0.5,
  reconnectMsMax: 300,
  crashPerSecond: 0.02,
  stopPerSecond: 0.005,
  restartMsMax: 3_000,
  pausePerSecond: 0.02,
  pauseMsMax: 2_500,
  partitionPerSecond: 0.08,
  partitionMsMax: 3_000,
  resetPerSecond: 0.1,
  answerLostRate: 0.02,
};

/**
 * Faults twice as often and longer: pauses past a lock's TTL (3 s: a paused coordinator's locks are
 * rolled back by readers), partitions most of the time, nodes down while others join or leave.
 */
const HARSH: PsimFaults = {
  ...MODERATE,
  crashPerSecond: 0.05,
  stopPerSecond: 0.01,
  pausePerSecond: 0.04,
  pauseMsMax: 5_000,
  partitionPerSecond: 0.15,
  partitionMsMax: 4_000,
  answerLostRate: 0.03,
};

/** The faults a run may be given, by name (a seed's replay names them). */
export const FAULT_PROFILES = { harsh: HARSH, moderate: MODERATE } as const;
export type FaultProfile = keyof typeof FAULT_PROFILES;

export const SETTINGS: NodeSettings = {
  partitions: 6,
  replicas: 3,
  // Small: every partition checkpoints and compacts its log often, so replicas that fall behind
  // and replicas moved to a new node catch up by snapshot.
  checkpointEntries: 16,
  checkpointBytes: 64 << 10,
  tailEntries: 4,
  timestampWindow: 200,
  metaCompactAfterEntries: 40,
  syncMsMax: 8,
};

/** Faults are drawn this often. */
const CHAOS_EVERY_MS = 100;
/** A client waits this long for an answer (its gRPC deadline); then the outcome is unknown to it. */
const CLIENT_DEADLINE_MS = 8_000;
/** A node change waits this long for the meta group's leader (cluster add and remove: 5 s). */
const CHANGE_TIMEOUT_MS = 5_000;
/** How often a membership change under way is looked at (asked again, or the removed node's groups asked). */
const MEMBERSHIP_EVERY_MS = 1_000;
/** Bounds every run of events (a livelock of timers is a failure, not a hang). */
const EVENTS_PER_VIRTUAL_SECOND_MAX = 40_000;

export interface PsimOptions {
  seed: number;
  /** Founding nodes (3 or 4); one more node is added during the run, and one removed. */
  founders: number;
  faults: FaultProfile;
  settings?: NodeSettings;
  bankClients?: number;
  registerClients?: number;
}

/** A membership change of the run, and whether it is over. */
interface Change {
  readonly kind: "add" | "remove";
  readonly node: SimNode;
  /** Added: the meta group took it. Removed: no group counts the node, which was stopped and wiped. */
  over: boolean;
}

/**
 * A deterministic simulation of a whole partitioned cluster (`homekv serve --partitions P`): every
 * node runs the real partitioned member (src/node/partitioned-member.ts: the meta group with the
 * timestamp oracle, the partitions' replicas with their checkpoints, the moves, peer RPC, the
 * failure detector, the transaction coordinator, the database the API is served through) on
 * virtual time over the simulated network of test/cluster/replication/sim/, its disk a
 * MemoryFileSystem. One seed decides every delay, fault and request; a run replays exactly.
 *
 * Faults: crashes (unsynced writes lost, the last one maybe torn) and restarts, clean stops,
 * pauses, partitions, connection resets, late payloads, and membership: a node added (putNode at the
 * meta leader, as `homekv cluster add` does) and a node removed, whose replicas move (learner, catch
 * up, maybe by snapshot, promote, hand over, remove, retire); once no group counts it the removed
 * node is stopped and its disk wiped.
 */
export class PartitionedSimulation extends SeededSimulation<PsimFaults> {
  readonly nodes: SimNode[];
  readonly clients: Clients;
  readonly settings: NodeSettings;
  readonly counts = { crashes: 0, stops: 0, pauses: 0, partitions: 0, added: 0, removed: 0, unknown: 0 };
  /** The nodes of the cluster as the simulation has changed it (the meta state follows). */
  readonly members = new Set<string>();
  /** The membership changes begun, in order; those asked for wait in `queued`, one at a time. */
  private readonly changes: Change[] = [];
  private readonly queued: Change[] = [];
  /** The membership changes a run makes: an add, a removal, and half the time the removed node added again. */
  private changesPlanned = 2;
  /** The simulation's own clock and timers (a membership change waits on them, not on a node's). */
  private readonly worldTimers = this.time.timersOf({ alive: true, pausedUntil: 0 });
  private instants = 0;
  private readonly founders: MemberAddress[];
  private readonly committed = new CommittedTerms();
  /** PSIM_TRACE=1: the nodes' log lines and the simulation's own doings, with virtual times (a replay's story). */
  readonly trace = process.env.PSIM_TRACE
    ? (line: string) => console.log(`${this.time.now.toFixed(1).padStart(9)} ${line}`)
    : undefined;

  constructor(readonly options: PsimOptions) {
    const names = Array.from({ length: options.founders + 1 }, (_, i) => `n${i + 1}`);
    // Calm until the run begins: the cluster forms and the bank opens without faults.
    super(options.seed, calm(FAULT_PROFILES[options.faults]), names, EVENTS_PER_VIRTUAL_SECOND_MAX);
    this.settings = options.settings ?? SETTINGS;
    this.nodes = names.map((name, i) => new SimNode(name, i < options.founders));
    this.founders = names.slice(0, options.founders).map((name) => ({ name, peerAddress: addressOf(name) }));
    for (const node of this.nodes.slice(0, options.founders)) {
      this.members.add(node.name);
      this.start(node);
    }
    this.clients = new Clients(this.world());
    this.time.afterEvent = () => this.checkCommitted();
  }

  /** The cluster forms and the bank is opened, without faults. */
  async form(ms: number): Promise<void> {
    let opened: boolean | undefined;
    this.clients.openBank(Math.ceil(ms / 1_000)).then((ok) => (opened = ok));
    await this.runUntil(() => opened !== undefined, ms, "bank opened");
    if (!opened) throw new Error(`the bank was not opened within ${ms} virtual ms: ${this.describe()}`);
  }

  /** `ms` of clients and faults; one node is added and one removed meanwhile. */
  async run(ms: number): Promise<void> {
    this.clientsActive = true;
    this.beginFaults(FAULT_PROFILES[this.options.faults]);
    const bank = this.options.bankClients ?? 3;
    const registers = this.options.registerClients ?? 3;
    for (let c = 0; c < bank; c++) this.clients.startBankClient(mulberry32(this.options.seed * 1_000 + c));
    for (let c = 0; c < registers; c++)
      this.clients.startRegisterClient(c, mulberry32(this.options.seed * 1_000 + 100 + c));
    this.drawFaultsEvery(
      CHAOS_EVERY_MS,
      this.nodes,
      {
        serving: (node) => (node.process?.db === undefined ? undefined : node.process),
        crash: (node) => {
          node.crash(this.network, this.random);
          this.counts.crashes++;
          this.trace?.(`${node.name} crashes`);
          this.restartLater(node);
        },
        stop: (node) => this.stop(node),
      },
      this.counts,
    );
    const spare = this.nodes.at(-1)!;
    this.time.schedule(1_000 + this.random() * (ms / 3), () => this.change({ kind: "add", node: spare, over: false }));
    this.time.schedule(ms / 2 + this.random() * (ms / 3), () => {
      const candidates = this.nodes.filter((node) => this.members.has(node.name));
      const node = candidates[Math.floor(this.random() * candidates.length)]!;
      this.change({ kind: "remove", node, over: false });
      // Its name may come back once no group counts it: a newcomer on a wiped disk, under the
      // same replica ids as the node removed.
      if (this.random() < 0.5) {
        this.changesPlanned++;
        this.change({ kind: "add", node, over: false });
      }
    });
    await this.runFor(ms);
  }

  /**
   * Ends every fault, stops the clients once their requests are answered, and lets the membership
   * changes finish; then the cluster must settle within `ms` (clusterSettled: every group at its
   * placement, every replica caught up, the removed node retired from every group and stopped).
   */
  async heal(ms: number): Promise<void> {
    this.endFaults(this.nodes, (node) => {
      if (this.shouldRun(node)) this.start(node);
    });
    await this.runUntil(
      () =>
        this.clients.inFlight === 0 &&
        this.changes.length === this.changesPlanned &&
        this.changes.every((change) => change.over) &&
        clusterSettled(this) === undefined,
      ms,
      "settled cluster",
      () => `${clusterSettled(this)}\n  `,
    );
  }

  /** Each node of the cluster reads every register and the whole bank (after every write answered). */
  async finalReads(ms: number): Promise<void> {
    let pending = 0;
    let bankReads = 0;
    for (const name of this.members) {
      pending++;
      this.clients.finalReads(name).finally(() => pending--);
      pending++;
      this.clients
        .readBank(name)
        .then((ok) => {
          if (ok) bankReads++;
        })
        .finally(() => pending--);
    }
    await this.runUntil(() => pending === 0, ms, "answer to every final read");
    const unanswered = this.clients.history.filter(
      (op) => typeof op.client === "string" && op.ret === Number.POSITIVE_INFINITY,
    );
    if (bankReads < this.members.size || unanswered.length > 0)
      throw new Error(`after the heal, a node did not answer a final read: ${this.describe()}`);
  }

  /** A digest of the run (events, deliveries, each replica's applied index and revision, the history): two runs of a seed must give the same. */
  fingerprint(): string {
    const groups = this.nodes.map((node) => {
      const member = node.process?.member;
      if (!member) return `${node.name}:-`;
      return `${node.name}:${[...member.replicas.groups].map(([p, g]) => `${p}@${g.driver.appliedIndex}/${g.store.revision}`).join(" ")}`;
    });
    return this.digest(groups.join(", "), this.clients.history);
  }

  describe(): string {
    return this.nodes
      .map((node) => {
        const member = node.process?.member;
        if (!member) return `${node.name} down`;
        const meta = member.meta.driver.stats();
        const groups = [...member.replicas.groups]
          .map(([p, g]) => `${p}${g.driver.leads ? "*" : ""}@${g.driver.appliedIndex}`)
          .join(" ");
        return `${node.name}${this.members.has(node.name) ? "" : " (out)"} meta ${meta.role} term ${meta.term} applied ${meta.appliedIndex}; partitions ${groups}${node.process!.pausedUntil > this.time.now ? "; paused" : ""}`;
      })
      .join("\n  ");
  }

  /** Raft's safety in every group, after every event (committed-terms.ts). */
  private checkCommitted(): void {
    for (const node of this.nodes) {
      const { member, engine } = node.process ?? {};
      if (member === undefined || engine === undefined) continue;
      const groups: (readonly [number, object])[] = [
        [META_GROUP, member.meta],
        ...[...member.replicas.groups].map(([p, group]) => [partitionGroupId(p), group] as const),
      ];
      for (const [id, replica] of groups) {
        const broken = this.committed.check(id, replica, `${node.name} (start ${node.generations})`, engine.group(id));
        if (broken !== undefined) this.violation(broken);
      }
    }
  }

  private violation(what: string): void {
    this.violations.push(what);
  }

  /** Whether the node should be running: a member, one being added, or one removed that a group may still count. */
  private shouldRun(node: SimNode): boolean {
    return this.members.has(node.name) || this.changes.some((change) => change.node === node && !change.over);
  }

  private start(node: SimNode): void {
    this.trace?.(`${node.name} starts (${node.initialState})`);
    const seeds =
      node.initialState === "new"
        ? this.founders
        : [...this.founders, { name: node.name, peerAddress: addressOf(node.name) }];
    node.start(this, this.settings, seeds, (what, error) =>
      this.violation(`${what}${error === undefined ? "" : ` ${error instanceof Error ? error.stack : String(error)}`}`),
    );
  }

  private restartLater(node: SimNode): void {
    this.time.schedule(this.random() * this.faults.restartMsMax, () => {
      if (node.process === undefined && this.shouldRun(node)) this.start(node);
    });
  }

  /** A clean stop (what SIGTERM does: the database closed), then a start again later. */
  private stop(node: SimNode): void {
    const process = node.process!;
    process.stopping = true;
    this.counts.stops++;
    this.trace?.(`${node.name} stops`);
    process.db!.close().then(
      () => {
        if (node.process === process) node.kill(this.network);
        this.restartLater(node);
      },
      (error) => this.violation(`${node.name} did not stop cleanly: ${error instanceof Error ? error.stack : error}`),
    );
  }

  /**
   * A membership change, asked at the meta group's leader through a node of the cluster (what
   * `homekv cluster add/remove` does), again every MEMBERSHIP_EVERY_MS until the meta group took it
   * (an attempt whose node died meanwhile is given up after twice its timeout). A node added is
   * started first, a newcomer; a node removed is stopped and its disk wiped once no group counts it
   * (its replicas moved away), asked of a node of the cluster the same way. Changes are made one at
   * a time, in the order asked.
   */
  private change(change: Change): void {
    this.queued.push(change);
    this.nextChange();
  }

  private nextChange(): void {
    if (this.changes.some((c) => !c.over)) return;
    const change = this.queued.shift();
    if (change === undefined) return;
    this.changes.push(change);
    this.trace?.(`${change.kind} ${change.node.name}`);
    const { node } = change;
    if (change.kind === "add" && node.process === undefined) this.start(node);
    if (change.kind === "remove") this.members.delete(node.name);
    const command: NodeChange =
      change.kind === "add"
        ? { type: "putNode", node: { name: node.name, peerAddress: addressOf(node.name) } }
        : { type: "removeNode", name: node.name };
    this.untilDone(
      (member) =>
        changeNodes(
          member.meta,
          member.rpc,
          (id) => member.names.get(id),
          command,
          CHANGE_TIMEOUT_MS,
          member.stillCounted,
          this.worldTimers,
        ).then((outcome) => {
          if (outcome.ok) return true;
          // A removal asked again after the first was applied is refused: it is done all the same.
          if (change.kind === "remove" && outcome.reason.includes("is not a node")) return true;
          // A name removed comes back once no group counts it, as the meta leader sees it.
          if (change.kind === "add" && outcome.reason.includes("still counts it")) return false;
          this.violation(`${change.kind} ${node.name} was refused: ${outcome.reason}`);
          return true;
        }),
      () => {
        if (change.kind === "add") {
          this.members.add(node.name);
          this.counts.added++;
          change.over = true;
          return this.nextChange();
        }
        this.counts.removed++;
        // Asked of the meta group's leader: a follower may hold a removal its leader has not committed.
        this.untilDone(
          async (member) => member.meta.driver.leads && (await member.stillCounted(node.name)) === undefined,
          () => {
            node.decommission(this.network);
            this.trace?.(`${node.name}, removed, is counted by no group: stopped and wiped`);
            change.over = true;
            this.nextChange();
          },
        );
      },
    );
  }

  /**
   * Runs `attempt` on a running node of the cluster (the meta leader, if one says it leads) until it resolves true, then `then`: again
   * every MEMBERSHIP_EVERY_MS after a false, a failure, or no answer within twice a change's timeout.
   */
  private untilDone(attempt: (member: PartitionedMember) => Promise<boolean>, then: () => void): void {
    let current = 0;
    const next = () => {
      const tries = ++current;
      const again = () => {
        if (tries === current) this.time.schedule(MEMBERSHIP_EVERY_MS, next);
      };
      // The node that says it leads the meta group if any (a node change goes there anyway), else any.
      const via = this.nodes.filter((n) => this.members.has(n.name) && n.process?.member);
      const leading = via.filter((n) => n.process!.member!.meta.driver.leads);
      const member = via.length === 0 ? undefined : this.pick(leading.length > 0 ? leading : via).process!.member!;
      if (member === undefined) return again();
      const giveUp = this.time.schedule(2 * CHANGE_TIMEOUT_MS, again);
      attempt(member).then(
        (done) => {
          if (tries !== current) return;
          giveUp();
          if (done) then();
          else again();
        },
        () => {
          if (tries !== current) return;
          giveUp();
          again();
        },
      );
    };
    next();
  }

  private pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.random() * items.length)]!;
  }

  private world(): ClientWorld {
    return {
      call: (request, to) => this.call(request, to),
      pause: (ms) => new Promise((resolve) => this.time.schedule(ms, resolve)),
      instant: () => ++this.instants,
      active: () => this.clientsActive,
      violation: (what) => this.violation(what),
    };
  }

  /** One request to a node's process over a client link, within the client's deadline. */
  private async call<T>(request: (api: NodeApi) => Promise<T>, to?: string): Promise<Outcome<T>> {
    const name = to ?? this.pick([...this.members]);
    const node = this.nodes.find((n) => n.name === name)!;
    const process = node.process;
    const [db, member] = [process?.db, process?.member];
    const outcome = await overClientLink(
      this,
      { deadlineMs: CLIENT_DEADLINE_MS, answerLostRate: () => this.faults.answerLostRate },
      db === undefined || member === undefined ? undefined : process,
      () => request({ db: db!, member: member! }),
      (error) => this.classify(node, error),
    );
    if (outcome.kind === "unknown") this.counts.unknown++;
    return outcome;
  }

  /** What an error tells a client: a conflict was not applied; unavailability says nothing; anything else is a bug. */
  private classify<T>(node: SimNode, error: unknown): Outcome<T> {
    const why = error instanceof Error ? error.message : String(error);
    if (error instanceof HomeKvError) {
      if (error.code === "E_CONFLICT") return { kind: "refused", why };
      if (["E_UNAVAILABLE", "E_NOT_LEADER", "E_PROPOSAL_DROPPED", "E_DISK"].includes(error.code))
        return { kind: "unknown", why };
    }
    this.violation(`${node.name} answered with an unexpected error: ${error instanceof Error ? error.stack : why}`);
    return { kind: "unknown", why };
  }
}

function addressOf(name: string): string {
  return `sim:${name}`;
}

import {
  createGossiper,
  type Gossiper,
  type GossiperOptions,
  type Member,
  type Outgoing,
} from "../../../src/cluster/gossip/index.ts";
import { mulberry32 } from "../../../src/random.ts";

/**
 * A deterministic cluster: gossipers on a simulated clock and network, all driven by one seed. The
 * network loses, delays (uniformly between two bounds, so it also reorders) and duplicates
 * datagrams, and can be cut in two; nodes tick every interval with a little jitter, crash, restart
 * (with the next generation) and leave. Events run in simulated time order, ties in the order they
 * were scheduled, so a seed replays exactly.
 */
export interface NetworkProfile {
  lossRate: number;
  delayMinMs: number;
  delayMaxMs: number;
  duplicateRate: number;
}

export const CALM_NETWORK: NetworkProfile = { lossRate: 0, delayMinMs: 1, delayMaxMs: 5, duplicateRate: 0 };
export const ROUGH_NETWORK: NetworkProfile = { lossRate: 0.05, delayMinMs: 1, delayMaxMs: 100, duplicateRate: 0.01 };

export interface SimulationOptions {
  seed: number;
  nodes: number;
  /** The first this many nodes are everyone's seeds. */
  seedNodes?: number;
  network?: NetworkProfile;
  /** Each tick comes intervalMs × (1 ± tickJitter) after the last. */
  tickJitter?: number;
  gossip?: Partial<GossiperOptions>;
}

type NodeFate = "up" | "crashed" | "left";

/**
 * Ids as long as real ones ("homekv-7"), and generations that are start times in ms as the server's
 * will be: so that digests weigh what they will, and at 100 nodes a Syn holds only part of them.
 */
export const nodeId = (index: number) => `homekv-${index}`;
const grpcAddressOf = (id: string) => `${id}:20001`;
const GENERATION_EPOCH_MS = 1_750_000_000_000;

interface SimNode {
  readonly id: string;
  readonly index: number;
  readonly address: string;
  fate: NodeFate;
  generation: number;
  /** Ticks scheduled for an earlier incarnation are void. */
  incarnation: number;
  gossiper: Gossiper | undefined;
}

type SimEventBody =
  | { kind: "tick"; node: SimNode; incarnation: number }
  | { kind: "stop"; node: SimNode; incarnation: number }
  | { kind: "deliver"; from: string; to: string; datagram: Uint8Array };
type SimEvent = SimEventBody & { atMs: number; seq: number };

/** Called before a node handles an event, with the node's id: a hook for invariants checked at every step. */
export type StepObserver = (nodeId: string, gossiper: Gossiper) => void;

export class Simulation {
  nowMs = 0;
  delivered = 0;
  lost = 0;
  largestDatagramBytes = 0;
  readonly intervalMs: number;
  private readonly nodes: SimNode[] = [];
  private readonly byAddress = new Map<string, SimNode>();
  private readonly queue = new EventQueue();
  private readonly random: () => number;
  private readonly network: NetworkProfile;
  private readonly tickJitter: number;
  private readonly seedAddresses: string[];
  private side = new Map<string, number>();

  constructor(private readonly options: SimulationOptions) {
    this.random = mulberry32(options.seed);
    this.network = options.network ?? CALM_NETWORK;
    this.tickJitter = options.tickJitter ?? 0.05;
    this.intervalMs = options.gossip?.intervalMs ?? 500;
    for (let index = 0; index < options.nodes; index++) {
      const id = nodeId(index);
      const node: SimNode = {
        id,
        index,
        address: `${id}:7946`,
        fate: "up",
        generation: GENERATION_EPOCH_MS,
        incarnation: 0,
        gossiper: undefined,
      };
      this.nodes.push(node);
      this.byAddress.set(node.address, node);
    }
    this.seedAddresses = this.nodes
      .slice(0, options.seedNodes ?? Math.min(3, options.nodes))
      .map((node) => node.address);
    for (const node of this.nodes) this.boot(node);
  }

  get ids(): string[] {
    return this.nodes.map((node) => node.id);
  }

  upIds(): string[] {
    return this.nodes.filter((node) => node.fate === "up").map((node) => node.id);
  }

  gossiper(id: string): Gossiper {
    const gossiper = this.node(id).gossiper;
    if (gossiper === undefined) throw new Error(`${id} is not running`);
    return gossiper;
  }

  generation(id: string): number {
    return this.node(id).generation;
  }

  view(observer: string): Member[] {
    return this.gossiper(observer).members(this.nowMs);
  }

  /** Runs every event up to and including `untilMs`. */
  runUntilMs(untilMs: number, observe?: StepObserver): void {
    for (let event = this.queue.peek(); event !== undefined && event.atMs <= untilMs; event = this.queue.peek()) {
      this.queue.pop();
      this.nowMs = event.atMs;
      if (event.kind === "tick") this.tick(event.node, event.incarnation, observe);
      else if (event.kind === "stop") this.stop(event.node, event.incarnation);
      else this.deliver(event, observe);
    }
    this.nowMs = untilMs;
  }

  /** Runs in steps of `stepMs` until `done()` holds; returns that time, or undefined past `limitMs`. */
  runUntil(done: () => boolean, limitMs: number, stepMs = 50): number | undefined {
    const end = this.nowMs + limitMs;
    while (this.nowMs < end) {
      this.runUntilMs(Math.min(end, this.nowMs + stepMs));
      if (done()) return this.nowMs;
    }
    return undefined;
  }

  crash(id: string): void {
    const node = this.node(id);
    node.fate = "crashed";
    this.stop(node, node.incarnation);
  }

  /** A new process for the node: fresh state, the seeds to join through, its start time as generation. */
  restart(id: string): void {
    const node = this.node(id);
    node.generation = Math.max(node.generation + 1, GENERATION_EPOCH_MS + Math.floor(this.nowMs));
    node.fate = "up";
    this.boot(node);
  }

  /** A clean shutdown: the node announces it, goes on gossiping for `lingerMs`, then stops. */
  leave(id: string, lingerMs = this.intervalMs): void {
    const node = this.node(id);
    this.route(node.address, this.gossiper(id).leave(this.nowMs));
    node.fate = "left";
    this.queue.push({ kind: "stop", node, incarnation: node.incarnation, atMs: this.nowMs + lingerMs });
  }

  /** Cuts the network between `ids` and every other node. */
  partition(ids: readonly string[]): void {
    this.side = new Map(ids.map((id) => [this.node(id).address, 1]));
  }

  heal(): void {
    this.side = new Map();
  }

  /**
   * How `observer`'s view differs from the truth, or undefined when it does not: every node up is
   * alive with its generation and addresses; a crashed one is dead, a left one left (or forgotten).
   */
  divergence(observer: string): string | undefined {
    const seen = new Map(this.view(observer).map((member) => [member.nodeId, member]));
    for (const node of this.nodes) {
      const member = seen.get(node.id);
      if (node.fate === "up") {
        if (member === undefined) return `${observer} does not know ${node.id}`;
        const { status, generation, gossipAddress, grpcAddress } = member;
        if (
          status !== "alive" ||
          generation !== node.generation ||
          gossipAddress !== node.address ||
          grpcAddress !== grpcAddressOf(node.id)
        ) {
          return `${observer} sees ${node.id} as ${JSON.stringify({ status, generation, gossipAddress, grpcAddress })}, generation ${node.generation} up`;
        }
      } else {
        const expected = node.fate === "crashed" ? "dead" : "left";
        if (member !== undefined && member.status !== expected)
          return `${observer} sees ${node.id} (${node.fate}) as ${member.status}`;
      }
    }
    return undefined;
  }

  /** Runs until every view matches the truth; returns how long it took, or throws with what still differs. */
  converge(limitMs: number): number {
    const startMs = this.nowMs;
    const at = this.runUntil(() => this.firstDivergence() === undefined, limitMs);
    if (at === undefined) throw new Error(`no convergence within ${limitMs} ms: ${this.firstDivergence()}`);
    return at - startMs;
  }

  /** The first divergence of any node up, or undefined when all views match the truth. */
  firstDivergence(): string | undefined {
    for (const id of this.upIds()) {
      const divergence = this.divergence(id);
      if (divergence !== undefined) return divergence;
    }
    return undefined;
  }

  private boot(node: SimNode): void {
    node.incarnation++;
    node.gossiper = createGossiper({
      clusterId: "sim",
      nodeId: node.id,
      generation: node.generation,
      gossipAddress: node.address,
      grpcAddress: grpcAddressOf(node.id),
      seeds: this.seedAddresses,
      random: mulberry32(mix(this.options.seed, node.index, node.incarnation)),
      nowMs: this.nowMs,
      ...this.options.gossip,
    });
    // Processes do not start in step: the first tick comes anywhere within an interval.
    this.queue.push({
      kind: "tick",
      node,
      incarnation: node.incarnation,
      atMs: this.nowMs + this.random() * this.intervalMs,
    });
  }

  private stop(node: SimNode, incarnation: number): void {
    if (node.incarnation !== incarnation) return;
    node.gossiper = undefined;
    node.incarnation++;
  }

  private tick(node: SimNode, incarnation: number, observe: StepObserver | undefined): void {
    if (node.incarnation !== incarnation || node.gossiper === undefined) return;
    observe?.(node.id, node.gossiper);
    this.route(node.address, node.gossiper.tick(this.nowMs));
    const jitter = 1 + (this.random() * 2 - 1) * this.tickJitter;
    this.queue.push({ kind: "tick", node, incarnation, atMs: this.nowMs + this.intervalMs * jitter });
  }

  private deliver(event: Extract<SimEvent, { kind: "deliver" }>, observe: StepObserver | undefined): void {
    const node = this.byAddress.get(event.to);
    if (node?.gossiper === undefined || this.cut(event.from, event.to)) {
      this.lost++;
      return;
    }
    this.delivered++;
    observe?.(node.id, node.gossiper);
    this.route(event.to, node.gossiper.receive(event.from, event.datagram, this.nowMs));
  }

  private route(from: string, outgoing: readonly Outgoing[]): void {
    const { lossRate, delayMinMs, delayMaxMs, duplicateRate } = this.network;
    for (const { to, datagram } of outgoing) {
      this.largestDatagramBytes = Math.max(this.largestDatagramBytes, datagram.byteLength);
      const copies = this.random() < duplicateRate ? 2 : 1;
      for (let i = 0; i < copies; i++) {
        if (this.cut(from, to) || this.random() < lossRate) {
          this.lost++;
          continue;
        }
        const delayMs = delayMinMs + this.random() * (delayMaxMs - delayMinMs);
        this.queue.push({ kind: "deliver", from, to, datagram, atMs: this.nowMs + delayMs });
      }
    }
  }

  private cut(from: string, to: string): boolean {
    return (this.side.get(from) ?? 0) !== (this.side.get(to) ?? 0);
  }

  private node(id: string): SimNode {
    const node = this.nodes.find((candidate) => candidate.id === id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }
}

/** A per-node seed from the simulation's seed: same seed, same node, same generation, same choices. */
function mix(seed: number, index: number, generation: number): number {
  return (
    (Math.imul(seed ^ 0x9e3779b9, 0x85ebca6b) ^
      Math.imul(index + 1, 0xc2b2ae35) ^
      Math.imul(generation, 0x27d4eb2f)) >>>
    0
  );
}

/** A binary min-heap of events by (time, order of scheduling). */
class EventQueue {
  private readonly heap: SimEvent[] = [];
  private seq = 0;

  push(event: SimEventBody & { atMs: number }): void {
    this.heap.push({ ...event, seq: this.seq++ });
    for (let i = this.heap.length - 1; i > 0; ) {
      const parent = (i - 1) >> 1;
      if (!before(this.heap[i]!, this.heap[parent]!)) break;
      [this.heap[i], this.heap[parent]] = [this.heap[parent]!, this.heap[i]!];
      i = parent;
    }
  }

  peek(): SimEvent | undefined {
    return this.heap[0];
  }

  pop(): void {
    const last = this.heap.pop()!;
    if (this.heap.length === 0) return;
    this.heap[0] = last;
    for (let i = 0; ; ) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < this.heap.length && before(this.heap[left]!, this.heap[least]!)) least = left;
      if (right < this.heap.length && before(this.heap[right]!, this.heap[least]!)) least = right;
      if (least === i) return;
      [this.heap[i], this.heap[least]] = [this.heap[least]!, this.heap[i]!];
      i = least;
    }
  }
}

function before(a: SimEvent, b: SimEvent): boolean {
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.seq < b.seq);
}

/**
 * Runs a scenario once per seed: seeds 1..count, or GOSSIP_SIM_SEEDS of them for a soak (with
 * `bun test --timeout 3600000`: the per-test timeouts are sized for the default counts), or only
 * GOSSIP_SEED to replay one. A failure names its seed and how to replay it.
 */
export function forEachSeed(scenario: string, count: number, run: (seed: number) => void): void {
  const only = process.env.GOSSIP_SEED;
  const total = Number(process.env.GOSSIP_SIM_SEEDS ?? count);
  const seeds = only !== undefined ? [Number(only)] : Array.from({ length: total }, (_, i) => i + 1);
  for (const seed of seeds) {
    try {
      run(seed);
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error);
      throw new Error(
        `${scenario}, seed ${seed} (replay: GOSSIP_SEED=${seed} bun test test/cluster/gossip): ${reason}`,
        { cause: error },
      );
    }
  }
}

/** "median 2.7, max 3.6 rounds over 24 seeds": for the figures the tests print. */
export function summary(values: readonly number[], unit: string): string {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length / 2;
  const median = sorted.length % 2 === 1 ? sorted[Math.floor(middle)]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
  return `median ${median.toFixed(1)}, max ${sorted.at(-1)!.toFixed(1)} ${unit} over ${sorted.length} seeds`;
}

import { mulberry32 } from "../../../../src/random.ts";
import type { Operation } from "../../../linearizability/history.ts";
import { calm, drawFaults, type FaultActions, type FaultRates } from "./fault-draw.ts";
import { type NetworkFaults, SimNetwork } from "./sim-network.ts";
import { type Owner, VirtualTime } from "./virtual-time.ts";

/**
 * What a seeded simulation of a cluster has, whatever its nodes run: virtual time, the seed's
 * random, the simulated network between the nodes, the faults of the moment and the broken rules
 * seen (the run fails on the first); it runs for a while, or until a condition holds, and ends its
 * faults before the cluster must settle.
 */
export abstract class SeededSimulation<F extends NetworkFaults & FaultRates & { answerLostRate: number }> {
  readonly time = new VirtualTime();
  readonly random: () => number;
  readonly network: SimNetwork;
  /** Broken rules seen while running (a bug report, an unexpected error); the run fails on the first. */
  readonly violations: string[] = [];
  /** Whether clients still issue requests (they stop when the faults end). */
  protected clientsActive = true;

  protected constructor(
    readonly seed: number,
    protected faults: F,
    names: readonly string[],
    /** Bounds every run of events (a livelock of timers is a failure, not a hang). */
    private readonly eventsPerVirtualSecondMax: number,
  ) {
    this.random = mulberry32(seed);
    this.network = new SimNetwork(this.time, this.random, faults, names);
  }

  /** The nodes' state, one line, for a failure's report. */
  abstract describe(): string;

  /** Runs for `ms` of virtual time, whatever happens meanwhile (faults, clients). */
  protected async runFor(ms: number): Promise<void> {
    await this.time.runUntil(this.time.now + ms, (ms / 1_000) * this.eventsPerVirtualSecondMax);
    this.throwIfViolated();
  }

  /** Runs until `done()` holds; throws, saying what it waited for (and `detail()`), if it does not within `ms`. */
  protected async runUntil(done: () => boolean, ms: number, what: string, detail = () => ""): Promise<void> {
    const settled = await this.time.runUntilDone(
      done,
      this.time.now + ms,
      (ms / 1_000) * this.eventsPerVirtualSecondMax,
    );
    this.throwIfViolated();
    if (!settled) throw new Error(`no ${what} within ${ms} virtual ms: ${detail()}${this.describe()}`);
  }

  protected throwIfViolated(): void {
    if (this.violations.length > 0) throw new Error(`at ${this.time.now.toFixed(1)} virtual ms: ${this.violations[0]}`);
  }

  /** The faults of the run from now on (a simulation may begin calm). */
  protected beginFaults(faults: F): void {
    this.faults = faults;
    this.network.faults = faults;
  }

  /** Draws a round of faults (drawFaults) every `roundMs` from now on; endFaults makes their rates nought. */
  protected drawFaultsEvery<T extends { readonly name: string }>(
    roundMs: number,
    members: readonly T[],
    act: FaultActions<T>,
    counts: { pauses: number; partitions: number },
  ): void {
    const round = () => {
      this.time.schedule(roundMs, round);
      drawFaults(this, this.faults, roundMs, members, act, counts);
    };
    this.time.schedule(roundMs, round);
  }

  /**
   * The faults end: none to come (calm), partitions healed, clients stop issuing requests, paused
   * processes go on; `start` starts each node down that should run.
   */
  protected endFaults<N extends { process: Owner | undefined }>(nodes: readonly N[], start: (node: N) => void) {
    this.beginFaults(calm(this.faults));
    this.network.heal();
    this.clientsActive = false;
    for (const node of nodes) {
      if (node.process) node.process.pausedUntil = 0;
      else start(node);
    }
  }

  /** A digest of the run (events, deliveries, `state`, the history): two runs of a seed must give the same. */
  protected digest(state: string, history: readonly Operation<unknown, unknown>[]): string {
    const ops = history.map((op) => `${op.call}:${op.ret}:${JSON.stringify(op.input)}:${JSON.stringify(op.output)}`);
    return `${this.time.fired} events, ${this.network.payloadsDelivered} payloads, t=${this.time.now.toFixed(3)}, ${state}, history ${hash(ops.join("\n"))}`;
  }
}

/** FNV-1a of a string, as a seed or a digest. */
export function hash(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

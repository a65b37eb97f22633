import type { NetworkFaults, SimNetwork } from "./sim-network.ts";
import type { Owner, VirtualTime } from "./virtual-time.ts";

/** Rates of the faults a simulation draws, per member (partitions and resets: per cluster) per virtual second. */
export interface FaultRates {
  crashPerSecond: number;
  /** A clean stop and a start again. */
  stopPerSecond: number;
  /** Frozen (SIGSTOP) for up to `pauseMsMax`: timers, messages and requests wait. */
  pausePerSecond: number;
  pauseMsMax: number;
  partitionPerSecond: number;
  partitionMsMax: number;
  /** A connection reset between two members. */
  resetPerSecond: number;
}

/**
 * `faults` with none left to come (a heal): no late payload, crash, stop, pause, partition, reset or
 * lost answer; the delays and reconnections of a calm network stay.
 */
export function calm<F extends NetworkFaults & FaultRates & { answerLostRate: number }>(faults: F): F {
  return {
    ...faults,
    lateRate: 0,
    crashPerSecond: 0,
    stopPerSecond: 0,
    pausePerSecond: 0,
    partitionPerSecond: 0,
    resetPerSecond: 0,
    answerLostRate: 0,
  };
}

/** What a draw does to a member; `serving`: its process while it serves (undefined: down or starting). */
export interface FaultActions<T> {
  serving(member: T): (Owner & { readonly stopping: boolean }) | undefined;
  crash(member: T): void;
  stop(member: T): void;
}

/**
 * One round of faults, drawn from the simulation's random for a round of `roundMs`: each member
 * serving, not stopping and not paused may crash, stop or pause; the members may be cut in two
 * (healed after up to `partitionMsMax`) unless they are already; two of them may have their
 * connection reset.
 */
export function drawFaults<T extends { readonly name: string }>(
  world: { time: VirtualTime; random: () => number; network: SimNetwork },
  rates: FaultRates,
  roundMs: number,
  members: readonly T[],
  act: FaultActions<T>,
  counts: { pauses: number; partitions: number },
): void {
  const { time, random, network } = world;
  const chance = (perSecond: number) => random() < (perSecond * roundMs) / 1_000;
  for (const member of members) {
    const process = act.serving(member);
    if (process === undefined || process.stopping || process.pausedUntil > time.now) continue;
    if (chance(rates.crashPerSecond)) act.crash(member);
    else if (chance(rates.stopPerSecond)) act.stop(member);
    else if (chance(rates.pausePerSecond)) {
      process.pausedUntil = time.now + random() * rates.pauseMsMax;
      counts.pauses++;
    }
  }
  if (!network.partitioned && chance(rates.partitionPerSecond)) {
    network.partition(new Set(members.filter(() => random() < 0.5).map((m) => m.name)));
    counts.partitions++;
    time.schedule(random() * rates.partitionMsMax, () => network.heal());
  }
  if (chance(rates.resetPerSecond)) {
    const pick = () => members[Math.floor(random() * members.length)]!;
    const [a, b] = [pick(), pick()];
    if (a !== b) network.reset(a.name, b.name);
  }
}

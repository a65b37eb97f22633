import { assert } from "../../errors.ts";
import type { PeerTransport, TransportStats } from "./types.ts";

export type PartitionDirection = "both" | "outbound" | "inbound";

/** A PeerTransport with faults switched on and off by a test while it runs. */
export interface FaultyTransport extends PeerTransport {
  /** Drops this fraction of the payloads sent (each drawn from `random`). */
  setDropRate(fraction: number): void;
  /**
   * Holds each payload sent for minMs..maxMs before passing it on. With a spread, later payloads may
   * overtake earlier ones, which TCP never does but Raft must bear anyway; minMs === maxMs keeps order.
   */
  setDelay(minMs: number, maxMs?: number): void;
  /**
   * Cuts this node off from `peers`: "outbound" drops what it sends them, "inbound" what they send
   * it, "both" both. Connections stay up, as through a firewall dropping packets; payloads already
   * delayed are checked again when their delay ends.
   */
  partition(peers: Iterable<string>, direction?: PartitionDirection): void;
  /** Ends the partitions with `peers`, or with every peer. */
  heal(peers?: Iterable<string>): void;
  faultStats(): FaultStats;
}

export interface FaultStats {
  dropped: number;
  delayed: number;
  partitioned: number;
}

/**
 * Wraps a transport for fault tests: the faults act where payloads enter and leave it, so the
 * wrapped transport's connections, queues and stats stay real. `random` is [0, 1) uniform; a seeded
 * one (src/random.ts) replays the same drops and delays.
 */
export function withFaults(inner: PeerTransport, random: () => number): FaultyTransport {
  return new FaultInjectingTransport(inner, random);
}

class FaultInjectingTransport implements FaultyTransport {
  private dropRate = 0;
  private delayMinMs = 0;
  private delayMaxMs = 0;
  private readonly cutOutbound = new Set<string>();
  private readonly cutInbound = new Set<string>();
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private handler: ((from: string, payload: Uint8Array) => void) | undefined;
  private readonly counts: FaultStats = { dropped: 0, delayed: 0, partitioned: 0 };

  constructor(
    private readonly inner: PeerTransport,
    private readonly random: () => number,
  ) {
    inner.onMessage((from, payload) => {
      if (this.cutInbound.has(from)) this.counts.partitioned++;
      else this.handler?.(from, payload);
    });
  }

  get nodeId(): string {
    return this.inner.nodeId;
  }

  get address(): string {
    return this.inner.address;
  }

  addPeer(nodeId: string, address: string): void {
    this.inner.addPeer(nodeId, address);
  }

  removePeer(nodeId: string): void {
    this.inner.removePeer(nodeId);
  }

  send(to: string, payload: Uint8Array): void {
    if (this.cutOutbound.has(to)) {
      this.counts.partitioned++;
      return;
    }
    if (this.dropRate > 0 && this.random() < this.dropRate) {
      this.counts.dropped++;
      return;
    }
    if (this.delayMaxMs === 0) return this.inner.send(to, payload);
    this.counts.delayed++;
    const timer = setTimeout(
      () => {
        this.timers.delete(timer);
        if (this.cutOutbound.has(to)) this.counts.partitioned++;
        else this.inner.send(to, payload);
      },
      this.delayMinMs + (this.delayMaxMs - this.delayMinMs) * this.random(),
    );
    this.timers.add(timer);
  }

  onMessage(handler: (from: string, payload: Uint8Array) => void): void {
    this.handler = handler;
  }

  connected(nodeId: string): boolean | undefined {
    return this.inner.connected(nodeId);
  }

  stats(): TransportStats {
    return this.inner.stats();
  }

  close(): void {
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    this.inner.close();
  }

  setDropRate(fraction: number): void {
    assert(fraction >= 0 && fraction <= 1, () => `a drop rate of ${fraction} is not a fraction`);
    this.dropRate = fraction;
  }

  setDelay(minMs: number, maxMs = minMs): void {
    assert(minMs >= 0 && maxMs >= minMs, () => `a delay of ${minMs}..${maxMs} ms`);
    this.delayMinMs = minMs;
    this.delayMaxMs = maxMs;
  }

  partition(peers: Iterable<string>, direction: PartitionDirection = "both"): void {
    for (const peer of peers) {
      if (direction !== "inbound") this.cutOutbound.add(peer);
      if (direction !== "outbound") this.cutInbound.add(peer);
    }
  }

  heal(peers?: Iterable<string>): void {
    if (!peers) {
      this.cutOutbound.clear();
      this.cutInbound.clear();
      return;
    }
    for (const peer of peers) {
      this.cutOutbound.delete(peer);
      this.cutInbound.delete(peer);
    }
  }

  faultStats(): FaultStats {
    return { ...this.counts };
  }
}

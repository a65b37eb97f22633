import type { PeerStats, PeerTransport } from "../../../../src/cluster/transport/types.ts";
import type { Owner, VirtualTime } from "./virtual-time.ts";

/** How the simulated network behaves; every draw comes from the simulation's seeded random. */
export interface NetworkFaults {
  /** One-way delay of a payload: usually up to `delayMsMax`, now and then (lateRate) up to `lateMsMax`. */
  delayMsMax: number;
  lateRate: number;
  lateMsMax: number;
  /** When a connection breaks, each payload on the wire is lost with this chance (else it still arrives, late). */
  lostOnBreakRate: number;
  /** A broken connection is dialled again after up to this long. */
  reconnectMsMax: number;
}

/** Payloads a sender queues for a peer it is not connected to; past it they are dropped (the real queue's bound). */
const QUEUE_PAYLOADS_MAX = 1_000;

/** One process's end of the network. */
interface Endpoint {
  readonly name: string;
  readonly owner: Owner;
  handler: ((from: string, payload: Uint8Array) => void) | undefined;
  /** Payloads for each peer waiting for a connection, in order. */
  readonly queues: Map<string, Uint8Array[]>;
  drops: number;
}

/** A connection between two members (one per pair, both directions, as the real transport has). */
interface Link {
  up: boolean;
  /** Bumped at each break: a payload sent on an older connection is no longer in order with new ones. */
  epoch: number;
  /** Per direction (`from>to`): when the last payload of this connection arrives (TCP keeps order). */
  lastArrival: Map<string, number>;
  /** Payloads on the wire, with their cancel (a break may lose them). */
  onWire: Set<{ cancel: () => void }>;
  reconnecting: boolean;
}

/**
 * The peer transport as the members see it, simulated: one connection per pair of members, each in
 * order (TCP), delays drawn from the seed; a partition or a crash breaks a connection (payloads on
 * the wire are lost or, if they got out before, arrive late: so order changes only across a
 * reconnect), and a broken connection is dialled again. Like the real transport it never duplicates,
 * queues payloads for a peer it is not connected to (bounded) and sends them once it is, and never
 * throws. A payload arrives only at the process it was sent to: one sent to a process that died is
 * lost, one sent to a paused process waits until it resumes.
 */
export class SimNetwork {
  private readonly endpoints = new Map<string, Endpoint>();
  /** By member, by peer: the same link both ways. */
  private readonly links = new Map<string, Map<string, Link>>();
  /** Pairs (`a|b`, sorted) that cannot connect. */
  private readonly cut = new Set<string>();
  payloadsDelivered = 0;

  constructor(
    private readonly time: VirtualTime,
    private readonly random: () => number,
    public faults: NetworkFaults,
    private readonly names: readonly string[],
  ) {
    for (const name of names) this.links.set(name, new Map());
    for (const [i, a] of names.entries())
      for (const b of names.slice(i + 1)) {
        const link: Link = { up: false, epoch: 0, lastArrival: new Map(), onWire: new Set(), reconnecting: false };
        this.links.get(a)!.set(b, link);
        this.links.get(b)!.set(a, link);
      }
  }

  /** The transport of a process starting as member `name`; its earlier process must be dead. */
  attach(name: string, owner: Owner): PeerTransport {
    const endpoint: Endpoint = { name, owner, handler: undefined, queues: new Map(), drops: 0 };
    this.endpoints.set(name, endpoint);
    for (const peer of this.names) if (peer !== name) this.reconnectLater(name, peer);
    return {
      nodeId: name,
      address: `sim:${name}`,
      addPeer() {},
      removePeer() {},
      send: (to, payload) => this.send(endpoint, to, payload),
      onMessage(handler) {
        endpoint.handler = handler;
      },
      connected: (peer) => (this.names.includes(peer) && peer !== name ? this.isUp(endpoint, peer) : undefined),
      stats: () => this.stats(endpoint),
      close: () => this.detach(endpoint),
    };
  }

  /** The process of `name` died: its connections break, what it queued is gone. */
  crashed(name: string): void {
    const endpoint = this.endpoints.get(name);
    if (endpoint) this.detach(endpoint);
  }

  /** Cuts the members into two sides that cannot reach each other (a side may be empty: no cut). */
  partition(side: ReadonlySet<string>): void {
    this.heal();
    for (const a of side)
      for (const b of this.names) {
        if (side.has(b)) continue;
        this.cut.add(pairKey(a, b));
        this.breakLink(a, b);
      }
  }

  /** Ends every partition: cut pairs dial again. */
  heal(): void {
    const cut = [...this.cut];
    this.cut.clear();
    for (const pair of cut) {
      const [a, b] = pair.split("|") as [string, string];
      this.reconnectLater(a, b);
    }
  }

  /** A connection reset (a peer's socket error): it breaks now and is dialled again. */
  reset(a: string, b: string): void {
    this.breakLink(a, b);
    this.reconnectLater(a, b);
  }

  get partitioned(): boolean {
    return this.cut.size > 0;
  }

  private link(a: string, b: string): Link {
    return this.links.get(a)!.get(b)!;
  }

  private live(name: string): Endpoint | undefined {
    const endpoint = this.endpoints.get(name);
    return endpoint?.owner.alive ? endpoint : undefined;
  }

  private send(from: Endpoint, to: string, payload: Uint8Array): void {
    if (!from.owner.alive) return;
    const link = this.link(from.name, to);
    if (!link.up) {
      const queue = from.queues.get(to) ?? [];
      if (queue.length >= QUEUE_PAYLOADS_MAX) from.drops++;
      else queue.push(payload);
      from.queues.set(to, queue);
      return;
    }
    this.transmit(from, to, link, payload);
  }

  private transmit(from: Endpoint, to: string, link: Link, payload: Uint8Array): void {
    const receiver = this.live(to);
    if (receiver === undefined) return;
    const f = this.faults;
    const delay = this.random() < f.lateRate ? 1 + this.random() * f.lateMsMax : 0.05 + this.random() * f.delayMsMax;
    const direction = `${from.name}>${to}`;
    const at = Math.max(this.time.now + delay, link.lastArrival.get(direction) ?? 0);
    link.lastArrival.set(direction, at);
    // Bytes on the wire: the receiver gets its own copy.
    const bytes = payload.slice();
    // An event of the receiver's: a paused process takes it when it resumes (the kernel holds
    // what arrives for a stopped process), a dead one never.
    const flight = {
      cancel: this.time.schedule(
        at - this.time.now,
        () => {
          link.onWire.delete(flight);
          // Only the process it was sent to, and only if it still runs.
          if (this.endpoints.get(to) !== receiver || !receiver.owner.alive) return;
          this.payloadsDelivered++;
          receiver.handler?.(from.name, bytes);
        },
        receiver.owner,
      ),
    };
    link.onWire.add(flight);
  }

  private breakLink(a: string, b: string): void {
    const link = this.link(a, b);
    if (!link.up) return;
    link.up = false;
    link.epoch++;
    link.lastArrival.clear();
    for (const flight of link.onWire) {
      if (this.random() < this.faults.lostOnBreakRate) {
        flight.cancel();
        link.onWire.delete(flight);
      }
    }
  }

  /** Dials `a`–`b` again after a backoff, if both run and no partition separates them then. */
  private reconnectLater(a: string, b: string): void {
    const link = this.link(a, b);
    if (link.up || link.reconnecting) return;
    link.reconnecting = true;
    this.time.schedule(1 + this.random() * this.faults.reconnectMsMax, () => {
      link.reconnecting = false;
      if (link.up || this.cut.has(pairKey(a, b))) return;
      const [ea, eb] = [this.live(a), this.live(b)];
      if (ea === undefined || eb === undefined) return; // dialled again when the dead one starts
      link.up = true;
      for (const [from, to] of [
        [ea, b],
        [eb, a],
      ] as const) {
        const queued = from.queues.get(to) ?? [];
        from.queues.delete(to);
        for (const payload of queued) this.transmit(from, to, link, payload);
      }
    });
  }

  private detach(endpoint: Endpoint): void {
    if (this.endpoints.get(endpoint.name) !== endpoint) return;
    endpoint.queues.clear();
    for (const peer of this.names) if (peer !== endpoint.name) this.breakLink(endpoint.name, peer);
  }

  private isUp(endpoint: Endpoint, peer: string): boolean {
    return this.link(endpoint.name, peer).up && endpoint.owner.alive;
  }

  private stats(endpoint: Endpoint) {
    const peers: Record<string, PeerStats> = {};
    for (const peer of this.names) {
      if (peer === endpoint.name) continue;
      peers[peer] = {
        address: `sim:${peer}`,
        connected: this.isUp(endpoint, peer),
        bytesSent: 0,
        payloadsSent: 0,
        bytesReceived: 0,
        payloadsReceived: 0,
        drops: endpoint.drops,
        queuedPayloads: endpoint.queues.get(peer)?.length ?? 0,
        queuedBytes: 0,
        writes: 0,
        reconnects: 0,
      };
    }
    return {
      peers,
      openConnections: Object.values(peers).filter((p) => p.connected).length,
      unknownPeerDrops: 0,
      refused: 0,
      refusedByPeers: 0,
      corruptFrames: 0,
      oversizedFrames: 0,
    };
  }
}

function pairKey(a: string, b: string): string {
  return a < b ? `${a}|${b}` : `${b}|${a}`;
}

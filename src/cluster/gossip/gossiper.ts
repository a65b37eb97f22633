import { assert } from "../../errors.ts";
import { type DecodeRejection, decode, encode, messageOverheadBytes } from "./codec.ts";
import { answerRequests, answerSyn, deltaFor, packDeltas, synDigests } from "./exchange.ts";
import type { Delta, GossipMessage } from "./messages.ts";
import {
  KEY_GOSSIP_ADDRESS,
  KEY_GRPC_ADDRESS,
  KEY_HEARTBEAT,
  KEY_STATUS,
  NodeState,
  RESERVED_KEYS,
} from "./node-state.ts";
import { type GossiperOptions, type ResolvedOptions, resolveOptions } from "./options.ts";
import { chooseTargets } from "./peer-selection.ts";
import { type DeltaRejection, type Peer, PeerTable } from "./peer-table.ts";

/** A datagram to send; `to` is a gossip address ("host:port"). */
export interface Outgoing {
  to: string;
  datagram: Uint8Array;
}

/** alive / suspect / dead: this node's phi of the peer; left: the peer said so when it stopped. */
export type MemberStatus = "alive" | "suspect" | "dead" | "left";

export interface Member {
  nodeId: string;
  grpcAddress: string;
  gossipAddress: string;
  status: MemberStatus;
  /** 0 for this node itself. */
  phi: number;
  heartbeat: number;
  generation: number;
  /** When the last heartbeat arrived, on the caller's clock (this node: now). */
  lastSeenMs: number;
  isSelf: boolean;
  /** The published keys other than addresses, status and heartbeat (load, zone…). */
  metadata: Record<string, string>;
}

export type DatagramDrop = DecodeRejection | "from-self";

export interface GossipCounters {
  datagramsSent: number;
  datagramsReceived: number;
  datagramsDropped: Record<DatagramDrop, number>;
  deltasRejected: Record<DeltaRejection, number>;
  nodesForgotten: number;
}

export function createGossiper(options: GossiperOptions): Gossiper {
  return new Gossiper(resolveOptions(options));
}

/**
 * One node's gossip: scuttlebutt anti-entropy (exchange.ts) plus a phi accrual detector per peer.
 * A pure state machine: the caller owns the socket and the clock, calls tick() every intervalMs,
 * receive() for every datagram, leave() on a clean shutdown, and sends what they return. Time only
 * goes forward (a monotonic clock); every random choice comes from options.random.
 */
export class Gossiper {
  readonly nodeId: string;
  readonly generation: number;
  private readonly table: PeerTable;
  private readonly seeds: readonly string[];
  private readonly budgetBytes: number;
  private lastNowMs: number;
  private beats = 0;
  private left = false;
  private readonly stats: GossipCounters = {
    datagramsSent: 0,
    datagramsReceived: 0,
    datagramsDropped: {
      oversized: 0,
      truncated: 0,
      "bad-magic": 0,
      "bad-version": 0,
      checksum: 0,
      "unknown-kind": 0,
      "foreign-cluster": 0,
      malformed: 0,
      "from-self": 0,
    },
    deltasRejected: { self: 0, quarantined: 0, "stale-generation": 0, gap: 0, "nodes-max": 0 },
    nodesForgotten: 0,
  };

  constructor(private readonly options: ResolvedOptions) {
    this.nodeId = options.nodeId;
    this.generation = options.generation;
    this.lastNowMs = options.nowMs;
    const self = new NodeState(options.nodeId, options.generation);
    self.set(KEY_GRPC_ADDRESS, options.grpcAddress);
    self.set(KEY_GOSSIP_ADDRESS, options.gossipAddress);
    self.set(KEY_STATUS, "alive");
    self.set(KEY_HEARTBEAT, "0");
    this.table = new PeerTable(self, {
      nodesMax: options.nodesMax,
      forgetAfterMs: options.forgetAfterMs,
      detector: {
        threshold: options.phiThreshold,
        windowSamplesMax: options.windowSamplesMax,
        stdDevFloorMs: options.stdDevFloorMs,
        acceptablePauseMs: options.acceptablePauseMs,
        bootstrapIntervalMs: options.intervalMs,
      },
    });
    for (const [key, value] of Object.entries(options.metadata)) this.setMetadata(key, value);
    this.seeds = [...new Set(options.seeds)].filter((seed) => seed !== options.gossipAddress);
    this.budgetBytes = options.datagramBytesMax - messageOverheadBytes(options.clusterId, options.nodeId);
  }

  /** One gossip round: a heartbeat, forgetting, then a Syn to each target. */
  tick(nowMs: number): Outgoing[] {
    this.advanceClock(nowMs);
    this.table.self.set(KEY_HEARTBEAT, String(++this.beats));
    this.stats.nodesForgotten += this.table.expire(
      nowMs,
      (peer) => this.statusOf(peer, nowMs) === "dead" || isLeft(peer),
    );
    const live: string[] = [];
    const dead: string[] = [];
    for (const peer of this.table.values()) {
      const address = peer.state.get(KEY_GOSSIP_ADDRESS);
      const status = this.statusOf(peer, nowMs);
      if (address === undefined || status === "left") continue;
      (status === "dead" ? dead : live).push(address);
    }
    const targets = chooseTargets({ live, dead, seeds: this.seeds }, this.options.fanout, this.options.random);
    return targets.map((to) =>
      this.send(to, {
        kind: "syn",
        ...this.header(),
        ...synDigests(this.table, this.options.random, this.budgetBytes),
      }),
    );
  }

  /** Handles one datagram from `from` (the address to answer to). Bad datagrams are counted, never thrown. */
  receive(from: string, datagram: Uint8Array, nowMs: number): Outgoing[] {
    this.advanceClock(nowMs);
    this.stats.datagramsReceived++;
    const decoded = decode(datagram, {
      clusterId: this.options.clusterId,
      datagramBytesMax: this.options.datagramBytesMax,
    });
    if (!decoded.ok) return this.drop(decoded.rejection);
    const message = decoded.message;
    if (message.senderId === this.nodeId) return this.drop("from-self");
    if (message.kind === "syn") {
      const answer = answerSyn(this.table, message, this.options.random, this.budgetBytes);
      if (answer.requests.length === 0 && answer.deltas.length === 0) return [];
      return [this.send(from, { kind: "ack", ...this.header(), ...answer })];
    }
    this.applyAll(message.deltas, nowMs);
    if (message.kind === "ack2") return [];
    const deltas = answerRequests(this.table, message.requests, this.budgetBytes);
    return deltas.length === 0 ? [] : [this.send(from, { kind: "ack2", ...this.header(), deltas })];
  }

  /**
   * Announces a clean shutdown: publishes status "left" and pushes this node's whole state to every
   * known peer, so that they show it as left at once; a peer that loses the datagram hears it from
   * the others. Gossip goes on as before if the caller keeps calling tick() and receive(): lingering
   * an interval or two before closing the socket spreads "left" even where every push was lost.
   * Calling it again sends nothing.
   */
  leave(nowMs: number): Outgoing[] {
    this.advanceClock(nowMs);
    if (this.left) return [];
    this.table.self.set(KEY_STATUS, "left");
    this.left = true;
    const deltas = packDeltas([deltaFor(this.table.self, undefined)!], this.budgetBytes);
    const out: Outgoing[] = [];
    for (const peer of this.table.values()) {
      const address = peer.state.get(KEY_GOSSIP_ADDRESS);
      if (address !== undefined && !isLeft(peer))
        out.push(this.send(address, { kind: "ack2", ...this.header(), deltas }));
    }
    return out;
  }

  /** Publishes a key of this node's own (load, zone…); the gossiper's own keys are not for the caller. */
  setMetadata(key: string, value: string): void {
    assert(!RESERVED_KEYS.has(key), () => `${key} is a reserved gossip key`);
    this.table.self.set(key, value);
  }

  /**
   * Publishes where this node serves gRPC, when it was not known at start: a replicated member
   * founded through gossip (--bootstrap-expect) gossips before its server is bound.
   */
  setGrpcAddress(address: string): void {
    this.table.self.set(KEY_GRPC_ADDRESS, address);
  }

  /** This node's view of the cluster, itself included, in node id order. */
  members(nowMs: number): Member[] {
    this.advanceClock(nowMs);
    const self = toMember(this.table.self, this.left ? "left" : "alive", 0, nowMs, true);
    const peers = [...this.table.values()].map((peer) => {
      const phi = peer.detector.phi(nowMs);
      return toMember(peer.state, this.statusOf(peer, nowMs, phi), phi, peer.detector.lastArrivalMs, false);
    });
    return [self, ...peers].sort((a, b) => (a.nodeId < b.nodeId ? -1 : a.nodeId > b.nodeId ? 1 : 0));
  }

  /**
   * How this node sees one node (itself included) now, without building the whole view: for hot
   * paths such as routing a request. Undefined for a node it does not know.
   */
  liveness(nodeId: string, nowMs: number): { status: MemberStatus; phi: number } | undefined {
    this.advanceClock(nowMs);
    if (nodeId === this.nodeId) return { status: this.left ? "left" : "alive", phi: 0 };
    const peer = this.table.peer(nodeId);
    if (peer === undefined) return undefined;
    const phi = peer.detector.phi(nowMs);
    return { status: this.statusOf(peer, nowMs, phi), phi };
  }

  /** A copy of the counters. */
  counters(): GossipCounters {
    return structuredClone(this.stats);
  }

  private statusOf(peer: Peer, nowMs: number, phi = peer.detector.phi(nowMs)): MemberStatus {
    if (isLeft(peer)) return "left";
    if (phi >= this.options.phiThreshold) return "dead";
    return phi >= this.options.suspectPhi ? "suspect" : "alive";
  }

  private applyAll(deltas: readonly Delta[], nowMs: number): void {
    for (const delta of deltas) {
      const rejection = this.table.apply(delta, nowMs);
      if (rejection !== undefined) this.stats.deltasRejected[rejection]++;
    }
  }

  private header(): { clusterId: string; senderId: string } {
    return { clusterId: this.options.clusterId, senderId: this.nodeId };
  }

  private send(to: string, message: GossipMessage): Outgoing {
    const datagram = encode(message);
    if (datagram.byteLength > this.options.datagramBytesMax)
      assert(false, () => `built a ${datagram.byteLength}-byte datagram`);
    this.stats.datagramsSent++;
    return { to, datagram };
  }

  private drop(reason: DatagramDrop): Outgoing[] {
    this.stats.datagramsDropped[reason]++;
    return [];
  }

  private advanceClock(nowMs: number): void {
    // Written so that NaN fails too; the message is built only on failure (this runs per datagram).
    if (!(nowMs >= this.lastNowMs))
      assert(false, () => `time went back from ${this.lastNowMs} to ${nowMs}: use a monotonic clock`);
    this.lastNowMs = nowMs;
  }
}

function isLeft(peer: Peer): boolean {
  return peer.state.get(KEY_STATUS) === "left";
}

function toMember(state: NodeState, status: MemberStatus, phi: number, lastSeenMs: number, isSelf: boolean): Member {
  return {
    nodeId: state.nodeId,
    grpcAddress: state.get(KEY_GRPC_ADDRESS) ?? "",
    gossipAddress: state.get(KEY_GOSSIP_ADDRESS) ?? "",
    status,
    phi,
    heartbeat: state.heartbeat,
    generation: state.generation,
    lastSeenMs,
    isSelf,
    metadata: state.metadata(),
  };
}

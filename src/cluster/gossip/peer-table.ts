import { assert } from "../../errors.ts";
import type { Delta } from "./messages.ts";
import { NodeState } from "./node-state.ts";
import { PhiDetector, type PhiDetectorOptions } from "./phi-detector.ts";

/** What a node knows of one other node: its state and how regularly its heartbeat arrives. */
export interface Peer {
  state: NodeState;
  readonly detector: PhiDetector;
}

/** Why a delta was not applied. Benign repeats (entries already held) are not rejections. */
export type DeltaRejection =
  | "self" // about the receiving node: it alone writes its state
  | "quarantined" // about a node forgotten lately, of that generation or older: a zombie
  | "stale-generation" // of an older generation than the one held
  | "gap" // starts above what the receiver holds (would lose entries in between)
  | "nodes-max"; // a new node while the table is full

export interface PeerTableOptions {
  detector: PhiDetectorOptions;
  nodesMax: number;
  forgetAfterMs: number;
}

/**
 * Every node this node knows, itself apart, and the ones it forgot lately. A forgotten node stays
 * quarantined for another forgetAfterMs, as Cassandra does: peers that have not forgotten it yet
 * still gossip its old state, which must not bring it back. A new generation (a restart) is let in.
 */
export class PeerTable {
  private readonly peers = new Map<string, Peer>();
  private readonly quarantine = new Map<string, { generation: number; untilMs: number }>();
  private sorted: string[] | undefined;

  constructor(
    readonly self: NodeState,
    private readonly options: PeerTableOptions,
  ) {
    assert(options.nodesMax >= 1 && options.forgetAfterMs > 0, "nodesMax and forgetAfterMs must be positive");
  }

  get size(): number {
    return this.peers.size;
  }

  peer(nodeId: string): Peer | undefined {
    return this.peers.get(nodeId);
  }

  /** The state of any known node, this one included. */
  state(nodeId: string): NodeState | undefined {
    return nodeId === this.self.nodeId ? this.self : this.peers.get(nodeId)?.state;
  }

  values(): IterableIterator<Peer> {
    return this.peers.values();
  }

  /** Ids of every known node, this one included, in the order every node agrees on. */
  sortedIds(): readonly string[] {
    this.sorted ??= [this.self.nodeId, ...this.peers.keys()].sort();
    return this.sorted;
  }

  isQuarantined(nodeId: string, generation: number): boolean {
    const held = this.quarantine.get(nodeId);
    return held !== undefined && generation <= held.generation;
  }

  /** Applies a delta received at `nowMs`; a heartbeat that advanced feeds the detector. */
  apply(delta: Delta, nowMs: number): DeltaRejection | undefined {
    if (delta.nodeId === this.self.nodeId) return "self";
    if (this.isQuarantined(delta.nodeId, delta.generation)) return "quarantined";
    const peer = this.peers.get(delta.nodeId);
    if (peer === undefined || delta.generation > peer.state.generation) {
      if (delta.fromVersion !== 0) return "gap";
      if (peer === undefined && this.peers.size >= this.options.nodesMax) return "nodes-max";
      const state = new NodeState(delta.nodeId, delta.generation);
      state.apply(0, delta.entries);
      if (peer === undefined) this.add(state, nowMs);
      else {
        peer.state = state;
        peer.detector.restart(nowMs);
      }
      return undefined;
    }
    if (delta.generation < peer.state.generation) return "stale-generation";
    if (delta.fromVersion > peer.state.maxVersion) return "gap";
    if (peer.state.apply(delta.fromVersion, delta.entries)) peer.detector.heartbeat(nowMs);
    return undefined;
  }

  /**
   * Forgets the peers `isGone` says are dead or left and whose last heartbeat is forgetAfterMs old;
   * ends the quarantines that are over. Returns how many peers it forgot.
   */
  expire(nowMs: number, isGone: (peer: Peer) => boolean): number {
    for (const [nodeId, held] of this.quarantine) if (held.untilMs <= nowMs) this.quarantine.delete(nodeId);
    let forgotten = 0;
    for (const [nodeId, peer] of this.peers) {
      if (nowMs - peer.detector.lastArrivalMs < this.options.forgetAfterMs || !isGone(peer)) continue;
      this.peers.delete(nodeId);
      this.sorted = undefined;
      // The quarantine is bounded like the table: past nodesMax the oldest quarantine ends early.
      this.quarantine.delete(nodeId);
      if (this.quarantine.size >= this.options.nodesMax) this.quarantine.delete(this.quarantine.keys().next().value!);
      this.quarantine.set(nodeId, { generation: peer.state.generation, untilMs: nowMs + this.options.forgetAfterMs });
      forgotten++;
    }
    return forgotten;
  }

  private add(state: NodeState, nowMs: number): void {
    this.peers.set(state.nodeId, { state, detector: new PhiDetector(this.options.detector, nowMs) });
    this.sorted = undefined;
  }
}

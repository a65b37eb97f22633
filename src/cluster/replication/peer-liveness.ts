import { realTimers, type Timers } from "../../timers.ts";
import type { PeerRpc } from "./peer-rpc.ts";

export const PING_METHOD = "node.ping";
const EMPTY = new Uint8Array(0);

export interface PeerLivenessOptions {
  rpc: PeerRpc;
  /** The nodes to watch (every other node of the cluster; `watch` changes them). */
  peers: readonly string[];
  /** How often each peer is pinged. */
  intervalMs: number;
  /** A peer that has answered no ping for this long is suspected down. */
  suspectAfterMs: number;
  timers?: Timers;
}

/**
 * A failure detector for the nodes of a partitioned cluster, one ping per peer per interval. Quiet
 * Raft groups send nothing, so a leader that stops without closing its connections (a paused
 * process, a machine gone without a FIN, a network partition) would never be missed by its quiet
 * followers: they wake and elect only when told the leader is down (RaftDriver's `disconnected`).
 * A closed connection says so at once; this says so of a silent peer within `suspectAfterMs`. It
 * does for the groups what gossip's failure detector does for membership, at the cost of one small
 * message per node pair and interval, whatever the number of groups.
 */
export class PeerLiveness {
  private readonly timers: Timers;
  private readonly heard = new Map<string, number>();
  private stopTimer: (() => void) | undefined;
  private peers: readonly string[];

  constructor(private readonly options: PeerLivenessOptions) {
    this.timers = options.timers ?? realTimers;
    this.peers = options.peers;
    options.rpc.handle(PING_METHOD, async () => EMPTY);
  }

  start(): void {
    this.watch(this.peers);
    this.stopTimer = this.timers.every(this.options.intervalMs, () => {
      for (const peer of this.peers)
        this.options.rpc.call(peer, PING_METHOD, EMPTY, this.options.suspectAfterMs).then(
          () => this.heard.set(peer, this.timers.now()),
          () => {},
        );
    });
  }

  /** Watches `peers` from now on (the cluster's nodes changed). */
  watch(peers: readonly string[]): void {
    // Until a first answer, a peer counts as heard when it is first watched: a node coming up, or
    // one just added, is suspected by nobody.
    const now = this.timers.now();
    for (const peer of peers) if (!this.heard.has(peer)) this.heard.set(peer, now);
    for (const peer of this.heard.keys()) if (!peers.includes(peer)) this.heard.delete(peer);
    this.peers = peers;
  }

  /** Whether `peer` has answered no ping for `suspectAfterMs`. */
  suspects(peer: string): boolean {
    const heard = this.heard.get(peer);
    return heard !== undefined && this.timers.now() - heard > this.options.suspectAfterMs;
  }

  stop(): void {
    this.stopTimer?.();
  }
}

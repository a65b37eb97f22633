import type { NodeId } from "../raft/types.ts";

/**
 * How many snapshot streams a node sends to one peer at a time, whatever group each is of: every
 * stream keeps its window of chunks in the peer's queue, and many at once (a node joining a cluster
 * of many partitions is sent one per replica moved to it) would fill the queue, which then drops
 * payloads whole — other groups' heartbeats among them. A stream waits for a slot before it begins.
 */
export class StreamSlots {
  private readonly peers = new Map<NodeId, { active: number; waiting: (() => void)[] }>();

  constructor(private readonly perPeer: number) {}

  /** Resolves once a stream to `to` may begin, with the function that ends it (once). */
  async acquire(to: NodeId): Promise<() => void> {
    let peer = this.peers.get(to);
    if (peer === undefined) {
      peer = { active: 0, waiting: [] };
      this.peers.set(to, peer);
    }
    if (peer.active >= this.perPeer) await new Promise<void>((resolve) => peer.waiting.push(resolve));
    else peer.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      const next = peer.waiting.shift();
      // The slot passes to the next in line; the count stays.
      if (next) next();
      else if (--peer.active === 0) this.peers.delete(to);
    };
  }

  /** Streams to `to` waiting for a slot (metrics, tests). */
  waiting(to: NodeId): number {
    return this.peers.get(to)?.waiting.length ?? 0;
  }
}

import type { NodeId } from "./types.ts";

interface PendingRead {
  readonly from: NodeId;
  readonly context: number;
  index: number;
  /** False until an entry of the leader's term is committed; its index is not known before. */
  confirmed: boolean;
  readonly acks: Set<NodeId>;
}

/**
 * A leader's ReadIndex requests in arrival order. A heartbeat carries the context of the newest
 * confirmed read; an answer to it proves leadership at a moment after every read up to that one
 * arrived, so a quorum of answers releases that read and all before it.
 */
export class ReadQueue {
  private queue: PendingRead[] = [];

  /** `self`: the leader's own acknowledgement, when it is a voter. */
  add(read: Omit<PendingRead, "acks">, self: NodeId | undefined): void {
    this.queue.push({ ...read, acks: new Set(self === undefined ? [] : [self]) });
  }

  /** The context a heartbeat should carry now, if any read waits for confirmation by a quorum. */
  lastContext(): number | undefined {
    for (let i = this.queue.length - 1; i >= 0; i--) if (this.queue[i]!.confirmed) return this.queue[i]!.context;
    return undefined;
  }

  /** The first commit of the leader's term: reads that arrived before it read at that index. */
  confirmTerm(commitIndex: number): number | undefined {
    let last: number | undefined;
    for (const read of this.queue) {
      if (read.confirmed) continue;
      read.confirmed = true;
      read.index = commitIndex;
      last = read.context;
    }
    return last;
  }

  /** `from` answered the heartbeat for `context`: the reads released by it, in order. */
  acknowledge(context: number, from: NodeId, quorum: number): PendingRead[] {
    const at = this.queue.findIndex((read) => read.confirmed && read.context === context);
    if (at === -1) return [];
    const read = this.queue[at]!;
    read.acks.add(from);
    if (read.acks.size < quorum) return [];
    return this.queue.splice(0, at + 1);
  }

  clear(): void {
    this.queue = [];
  }
}

import type { NodeId, ReadRequestId } from "./types.ts";

interface PendingRead {
  /** The node that asked (the leader itself, or a follower that forwarded the request). */
  readonly from: NodeId;
  readonly request: ReadRequestId;
  /** The commit index when the read arrived; 0 until an entry of the leader's term has committed. */
  index: number;
  /** The heartbeat round that confirms leadership for it; 0 until one is sent after it arrived. */
  round: number;
}

/**
 * A leader's ReadIndex requests (§6.4 of the thesis) in arrival order. Each heartbeat broadcast that
 * follows the arrival of reads is a numbered round; an answer to round r proves that this node was
 * still the leader at a moment after every read of rounds ≤ r arrived. A read is released once a
 * quorum of voters has answered its round or a later one. Round numbers belong to this leader only
 * (a leader's term never repeats), so a late answer to another leader's heartbeat cannot count.
 */
export class ReadQueue {
  private queue: PendingRead[] = [];
  private lastRound = 0;
  /** The newest round each voter has answered. */
  private answered = new Map<NodeId, number>();

  add(from: NodeId, request: ReadRequestId, index: number): void {
    this.queue.push({ from, request, index, round: 0 });
  }

  /** The first commit of the leader's term: reads that arrived before it read at that index. */
  confirmTerm(commitIndex: number): void {
    for (const read of this.queue) if (read.index === 0) read.index = commitIndex;
  }

  /** Whether reads with a known index wait for a heartbeat round to confirm them. */
  waitingForRound(): boolean {
    return this.queue.some((read) => read.index > 0 && read.round === 0);
  }

  /**
   * The round a heartbeat broadcast should carry now: a new one if reads with a known index are
   * waiting for a round, else the newest round still unconfirmed (a retry), else 0.
   */
  roundToSend(): number {
    if (this.waitingForRound()) {
      this.lastRound++;
      for (const read of this.queue) if (read.index > 0 && read.round === 0) read.round = this.lastRound;
      return this.lastRound;
    }
    return this.queue.some((read) => read.round > 0) ? this.lastRound : 0;
  }

  /**
   * Voter `from` answered round `round`. Returns the reads now released, in order: those whose round
   * a quorum of voters (`voters`, the leader's own say included when it is one) has reached.
   */
  answer(from: NodeId, round: number, voters: readonly NodeId[], quorum: number, self: NodeId): PendingRead[] {
    if (round === 0 || round > this.lastRound) return [];
    if ((this.answered.get(from) ?? 0) < round) this.answered.set(from, round);
    const reached = voters
      .map((id) => (id === self ? this.lastRound : (this.answered.get(id) ?? 0)))
      .sort((a, b) => b - a)[quorum - 1];
    if (reached === undefined || reached === 0) return [];
    let released = 0;
    while (released < this.queue.length && this.queue[released]!.round > 0 && this.queue[released]!.round <= reached)
      released++;
    return this.queue.splice(0, released);
  }

  /** Reads that need no other voter (a group of one): every read with a known index. */
  takeConfirmed(): PendingRead[] {
    const at = this.queue.findIndex((read) => read.index === 0);
    return this.queue.splice(0, at === -1 ? this.queue.length : at);
  }

  /** No read waits: nothing a quiescing leader would leave unanswered. */
  get empty(): boolean {
    return this.queue.length === 0;
  }

  clear(): void {
    this.queue = [];
    this.answered = new Map();
  }
}

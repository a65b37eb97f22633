/** One write a follower forwards: its sequence number here, and its entry command. */
export interface ForwardedWrite {
  seq: number;
  data: Uint8Array;
}

/**
 * A batch's entries stay within this many bytes (one write larger goes alone), well under the peer
 * transport's payload limit: a turn's worth of large writes in one frame would be dropped whole.
 */
export const FORWARD_BATCH_BYTES_MAX = 4 * 1024 * 1024;

interface Batch {
  writes: ForwardedWrite[];
  bytes: number;
}

/**
 * The writes a follower forwards, gathered per leader: the writes of one turn go to the leader in
 * one call (one frame, one timer, one answer), not a call each. A batch leaves once the microtasks
 * queued when it opened have run, so the other writes of the turn join it first; or at once when
 * the next write would take it past `bytesMax`.
 */
export class ForwardBatches {
  private readonly open = new Map<string, Batch>();

  constructor(
    private readonly send: (leader: string, writes: ForwardedWrite[]) => void,
    private readonly bytesMax = FORWARD_BATCH_BYTES_MAX,
  ) {}

  add(leader: string, write: ForwardedWrite): void {
    let batch = this.open.get(leader);
    if (batch && batch.bytes + write.data.byteLength > this.bytesMax) {
      this.close(leader, batch);
      batch = undefined;
    }
    if (batch === undefined) {
      const opened: Batch = { writes: [], bytes: 0 };
      this.open.set(leader, opened);
      queueMicrotask(() => this.close(leader, opened));
      batch = opened;
    }
    batch.writes.push(write);
    batch.bytes += write.data.byteLength;
  }

  /** Sends `batch` unless it was sent already (it filled up before its microtask ran). */
  private close(leader: string, batch: Batch): void {
    if (this.open.get(leader) !== batch) return;
    this.open.delete(leader);
    this.send(leader, batch.writes);
  }
}

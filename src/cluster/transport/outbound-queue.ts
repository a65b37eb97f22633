import { FRAME_HEADER_BYTES, sealFrame } from "../../io/format/frame.ts";

/**
 * The payloads waiting for one peer, and the batch being written to its connection.
 *
 *   push(a) push(b) push(c)      queued: a b c
 *   nextWrite()                  batch:  [hdr a][hdr b][hdr c]  (one buffer, one socket write)
 *   wrote(20)                    a's frame is out: 1 payload sent; the rest waits for drain
 *   push(d)                      queued: d (the batch is not touched)
 *   nextWrite()                  the rest of the batch; once it is out, nextWrite() frames d
 *
 * Both bounds count the batch's unwritten payloads and bytes too, so that a peer that stops reading
 * holds at most queuePayloadsMax payloads and queueBytesMax bytes here.
 */
export class OutboundQueue {
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  private batch: Batch | undefined;

  constructor(
    private readonly payloadsMax: number,
    private readonly bytesMax: number,
  ) {}

  /** Payloads not yet wholly written to a socket. */
  get payloads(): number {
    return this.queued.length + (this.batch ? this.batch.ends.length - this.batch.endsDone : 0);
  }

  /** Their bytes on the wire (frame headers included). */
  get bytes(): number {
    return this.queuedBytes + (this.batch ? this.batch.bytes.byteLength - this.batch.written : 0);
  }

  /**
   * Queues a payload; false when that would pass a bound (the payload is then not queued). The
   * payload is kept by reference until the next write: the sender must not change it afterwards.
   */
  push(payload: Uint8Array): boolean {
    const frameBytes = FRAME_HEADER_BYTES + payload.byteLength;
    if (this.payloads + 1 > this.payloadsMax || this.bytes + frameBytes > this.bytesMax) return false;
    this.queued.push(payload);
    this.queuedBytes += frameBytes;
    return true;
  }

  /**
   * What to write next: the unwritten rest of the batch, or else every queued payload framed into one
   * new batch. Undefined when nothing waits.
   */
  nextWrite(): Uint8Array | undefined {
    if (this.batch) return this.batch.bytes.subarray(this.batch.written);
    if (this.queued.length === 0) return undefined;
    const bytes = new Uint8Array(this.queuedBytes);
    const ends: number[] = [];
    let at = 0;
    for (const payload of this.queued) {
      bytes.set(payload, at + FRAME_HEADER_BYTES);
      const end = at + FRAME_HEADER_BYTES + payload.byteLength;
      sealFrame(bytes.subarray(0, end), at);
      ends.push(end);
      at = end;
    }
    this.queued = [];
    this.queuedBytes = 0;
    this.batch = { bytes, ends, written: 0, endsDone: 0 };
    return bytes;
  }

  /** Records that the socket took `bytes` of what nextWrite() returned; returns the payloads now wholly written. */
  wrote(bytes: number): number {
    const batch = this.batch;
    if (!batch || bytes <= 0) return 0;
    batch.written += bytes;
    const before = batch.endsDone;
    while (batch.endsDone < batch.ends.length && batch.ends[batch.endsDone]! <= batch.written) batch.endsDone++;
    if (batch.written >= batch.bytes.byteLength) this.batch = undefined;
    return batch.endsDone - before;
  }

  /**
   * Forgets the batch of a connection that closed before writing all of it (a frame cut in the
   * middle cannot go on over another connection); returns the payloads lost with it.
   */
  dropBatch(): number {
    const lost = this.batch ? this.batch.ends.length - this.batch.endsDone : 0;
    this.batch = undefined;
    return lost;
  }

  /** Forgets everything; returns the payloads lost. */
  clear(): number {
    const lost = this.dropBatch() + this.queued.length;
    this.queued = [];
    this.queuedBytes = 0;
    return lost;
  }
}

interface Batch {
  bytes: Uint8Array;
  /** Where each frame of the batch ends. */
  ends: number[];
  written: number;
  /** Frames wholly written. */
  endsDone: number;
}

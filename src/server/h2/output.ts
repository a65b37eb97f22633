/**
 * What a connection sends: frames are queued as they are made and go out together, in one socket
 * write per connection per event-loop turn (the turn's I/O callbacks and the microtasks they run,
 * handlers' answers included, all come before the flush in setImmediate). When the socket takes
 * less than it was given, the rest waits for its drain; meanwhile new frames queue behind it.
 */
export interface FrameSocket {
  /** Bytes the socket took (the rest must be written again later); Bun's socket.write. */
  write(data: Uint8Array): number;
}

/** Connections with something queued, flushed once the turn's callbacks are done. */
const dirty = new Set<Output>();
let flushScheduled = false;

function flushAll(): void {
  flushScheduled = false;
  const outputs = [...dirty];
  dirty.clear();
  for (const output of outputs) output.flush();
}

export class Output {
  private queued: Uint8Array[] = [];
  private queuedBytes = 0;
  /** What the socket did not take yet, oldest first. */
  private unwritten: Uint8Array | undefined;
  /** Run once everything queued before them has been taken by the socket. */
  private waiters: { atBytes: number; done: () => void }[] = [];
  /** Bytes ever queued, and ever taken by the socket: `taken` callbacks are placed on this count. */
  private queuedTotal = 0;
  private writtenTotal = 0;
  private closed = false;

  constructor(
    private readonly socket: FrameSocket,
    /** Called when the socket has taken everything (after a back-pressure wait): senders may go on. */
    private readonly onDrained: () => void,
  ) {}

  /** Bytes queued or written and not yet taken by the socket. */
  get pendingBytes(): number {
    return this.queuedTotal - this.writtenTotal;
  }

  push(frame: Uint8Array): void {
    if (this.closed) return;
    this.queued.push(frame);
    this.queuedBytes += frame.byteLength;
    this.queuedTotal += frame.byteLength;
    dirty.add(this);
    if (!flushScheduled) {
      flushScheduled = true;
      setImmediate(flushAll);
    }
  }

  /** Runs `done` once the socket has taken every frame queued so far. */
  whenTaken(done: () => void): void {
    if (this.pendingBytes === 0) done();
    else this.waiters.push({ atBytes: this.queuedTotal, done });
  }

  /** Writes what is queued (now; also what the next turn's flush would write). */
  flush(): void {
    if (this.closed || this.queuedBytes === 0 || this.unwritten !== undefined) return;
    const chunk = this.queued.length === 1 ? this.queued[0]! : Buffer.concat(this.queued, this.queuedBytes);
    this.queued = [];
    this.queuedBytes = 0;
    this.writeChunk(chunk);
  }

  /** The socket can take more: what it left, then what queued meanwhile. */
  drain(): void {
    if (this.closed) return;
    const rest = this.unwritten;
    this.unwritten = undefined;
    if (rest) this.writeChunk(rest);
    if (this.unwritten === undefined) {
      this.flush();
      if (this.unwritten === undefined) this.onDrained();
    }
  }

  /** Drops what is queued; nothing more is written. */
  close(): void {
    this.closed = true;
    this.queued = [];
    this.unwritten = undefined;
    this.waiters = [];
    dirty.delete(this);
  }

  private writeChunk(chunk: Uint8Array): void {
    const written = Math.max(0, this.socket.write(chunk));
    this.writtenTotal += written;
    if (written < chunk.byteLength) this.unwritten = chunk.subarray(written);
    if (this.waiters.length > 0) this.wakeWaiters();
  }

  private wakeWaiters(): void {
    let woken = 0;
    while (woken < this.waiters.length && this.waiters[woken]!.atBytes <= this.writtenTotal) woken++;
    if (woken === 0) return;
    const ready = this.waiters.splice(0, woken);
    for (const waiter of ready) waiter.done();
  }
}

/**
 * Which unary calls of a connection run their handler now, and which wait for their turn: at most
 * `runningMax` under way at once, each counted from its start until `done` (the connection says
 * when: its answer given and taken by the socket, src/server/h2/connection.ts), and none started
 * while `hasRoom` says the connection's answers leave no room. The others wait, in the order their
 * requests ended, holding only their request, and start as places free and room comes back
 * (`startWaiting`); one that ends while it waits (its client reset the stream, its deadline passed)
 * is forgotten. Go's HTTP/2 server queues handlers past its stream limit so (unstartedHandlers),
 * h2o the requests past http2-max-concurrent-requests-per-connection.
 */
export class CallAdmission<Call> {
  private readonly waiting = new Map<Call, () => void>();
  private readonly running = new Set<Call>();
  /** A start can end a call at once (a handler that throws): its `done` must not restart the loop under it. */
  private starting = false;

  constructor(
    private readonly runningMax: number,
    private readonly hasRoom: () => boolean,
  ) {}

  /** Handlers running now. */
  get runningCount(): number {
    return this.running.size;
  }

  /** Calls waiting for their turn. */
  get waitingCount(): number {
    return this.waiting.size;
  }

  /** Runs `start` now if the call may start, else once it may, after those that waited before it. */
  admit(call: Call, start: () => void): void {
    this.waiting.set(call, start);
    this.startWaiting();
  }

  /** The call is no longer under way: its place goes to the next. */
  done(call: Call): void {
    if (this.running.delete(call)) this.startWaiting();
  }

  /** The call ended before its turn: it never starts. */
  forget(call: Call): void {
    this.waiting.delete(call);
  }

  /** Starts waiting calls, oldest first, while one more may run and the answers leave room. */
  startWaiting(): void {
    if (this.starting) return;
    this.starting = true;
    try {
      // Bounded by the calls waiting: each round takes one off.
      for (const [call, start] of this.waiting) {
        if (this.running.size >= this.runningMax || !this.hasRoom()) return;
        this.waiting.delete(call);
        this.running.add(call);
        start();
      }
    } finally {
      this.starting = false;
    }
  }
}

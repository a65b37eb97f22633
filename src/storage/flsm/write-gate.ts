import { HomeKvError } from "../../errors.ts";
import { delay, realTimers, type Timers } from "../../timers.ts";

/**
 * What the engine's backlog asks of writes: none; `slowdown` (each group of writes waits
 * SLOWDOWN_MS, as LevelDB's writer sleeps 1 ms per write once level 0 reaches its slowdown
 * trigger); `stop` (writes wait until a flush or compaction catches up). `failure` names the last
 * failed flush or compaction while stopped: then writes are refused, not left waiting for work
 * that cannot run.
 */
export type Backlog =
  | { readonly stall: "none" }
  | { readonly stall: "slowdown" }
  | { readonly stall: "stop"; readonly failure?: string };

export const SLOWDOWN_MS = 1;

export interface WriteGateStats {
  /** Groups of writes (the WAL asks once per group) that waited for a stop to end. */
  stoppedGroups: number;
  /** Groups of writes that waited a slowdown. */
  slowedGroups: number;
  /** Time during which writes were stopped. */
  stoppedMs: number;
}

/**
 * Admits writes into an engine whose background work may fall behind, so that its memory (frozen
 * memtables) and level 0 stay bounded under a load the disk cannot keep up with. The WAL asks
 * `admit` before it logs each group of writes (wal-writer.ts): nothing of the group is logged,
 * applied or acknowledged while it waits, and a refusal (closing, or stopped by a failure) loses
 * nothing. The engine calls `changed` when a flush or compaction finishes, and the waiters look
 * again.
 *
 *   backlog none      admit() → undefined: go now (no promise, no turn lost)
 *   backlog slowdown  admit() → the current 1 ms pause, shared by every group that arrives in it
 *   backlog stop      admit() → waits for changed() with a backlog that is not stop
 */
export class WriteGate {
  private stopped: { resolve: () => void; reject: (error: unknown) => void }[] = [];
  private stoppedSince: number | undefined;
  private slowdown: Promise<void> | undefined;
  private closedError: HomeKvError | undefined;
  private readonly counters: WriteGateStats = { stoppedGroups: 0, slowedGroups: 0, stoppedMs: 0 };

  constructor(
    private readonly backlog: () => Backlog,
    private readonly timers: Timers = realTimers,
  ) {}

  /**
   * Undefined when a write may go now; otherwise settles when it may (or rejects: it may not). Once
   * closed, writes still go while there is no backlog (a closing WAL writes what it queued), and are
   * refused rather than held when there is one.
   */
  admit(): Promise<void> | undefined {
    const backlog = this.backlog();
    if (backlog.stall === "none") return undefined;
    if (this.closedError !== undefined) return Promise.reject(this.closedError);
    if (backlog.stall === "slowdown") {
      this.counters.slowedGroups++;
      this.slowdown ??= delay(SLOWDOWN_MS, this.timers).then(() => {
        this.slowdown = undefined;
      });
      return this.slowdown;
    }
    if (backlog.failure !== undefined) return Promise.reject(refusal(backlog.failure));
    this.counters.stoppedGroups++;
    this.stoppedSince ??= this.timers.now();
    return new Promise((resolve, reject) => this.stopped.push({ resolve, reject }));
  }

  /** The backlog may have moved: stopped writes go on if it is no longer a stop, or are refused on a failure. */
  changed(): void {
    if (this.stopped.length === 0) return;
    const backlog = this.backlog();
    const failure = backlog.stall === "stop" ? backlog.failure : undefined;
    if (backlog.stall === "stop" && failure === undefined) return;
    this.endStop();
    const waiters = this.stopped.splice(0);
    if (failure !== undefined) for (const waiter of waiters) waiter.reject(refusal(failure));
    else for (const waiter of waiters) waiter.resolve();
  }

  /** Refuses the writes waiting, and from now on every write a backlog would hold (the engine is closing). */
  close(error: HomeKvError): void {
    this.closedError = error;
    this.endStop();
    for (const waiter of this.stopped.splice(0)) waiter.reject(error);
  }

  stats(): WriteGateStats {
    const ongoing = this.stoppedSince === undefined ? 0 : this.timers.now() - this.stoppedSince;
    return { ...this.counters, stoppedMs: this.counters.stoppedMs + ongoing };
  }

  private endStop(): void {
    if (this.stoppedSince !== undefined) this.counters.stoppedMs += this.timers.now() - this.stoppedSince;
    this.stoppedSince = undefined;
  }
}

function refusal(failure: string): HomeKvError {
  return new HomeKvError(
    "E_DISK",
    `writes are stopped until the storage engine's background work succeeds (retried every second): ${failure}`,
  );
}

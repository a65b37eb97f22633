/**
 * The clock and timers of the replication layer (the Raft driver, peer RPC, forwarded writes, the
 * Raft commit log). Every one of them takes a `timers` option that defaults to `realTimers`; the
 * deterministic simulation (test/cluster/replication/sim/) gives them virtual time instead, so that
 * one seed decides when every timeout fires. Nothing else changes with it.
 */
export interface Timers {
  /** Monotonic milliseconds (performance.now in a server). */
  now(): number;
  /** Runs `fire` once after `delayMs`; the function returned cancels it (no effect once fired). */
  after(delayMs: number, fire: () => void): () => void;
  /** Runs `fire` every `intervalMs`; the function returned stops it. */
  every(intervalMs: number, fire: () => void): () => void;
  /**
   * Runs `fire` once the I/O of this turn of the event loop has been taken in (setImmediate): work
   * that many callbacks of one turn start runs once for all of them.
   */
  soon(fire: () => void): void;
}

export const realTimers: Timers = {
  now: () => performance.now(),
  after(delayMs, fire) {
    const timer = setTimeout(fire, delayMs);
    return () => clearTimeout(timer);
  },
  every(intervalMs, fire) {
    const timer = setInterval(fire, intervalMs);
    return () => clearInterval(timer);
  },
  soon(fire) {
    setImmediate(fire);
  },
};

/** Resolves after `ms` on `timers`' clock: a pause between tries, never a synchronisation. */
export function delay(ms: number, timers: Timers = realTimers): Promise<void> {
  return new Promise((resolve) => timers.after(ms, () => resolve()));
}

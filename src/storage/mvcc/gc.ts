import type { GarbageSource } from "./store.ts";

/**
 * Runs the store's garbage collection in the background, one bounded slice per event-loop turn, so
 * that no turn does work proportional to the size of the store. `kick()` after anything that may
 * create garbage or raise the floor (a commit, a released snapshot); the loop stops by itself when a
 * slice reports nothing more to do.
 */
export interface GcScheduler {
  kick(): void;
  /** Runs slices until nothing is left (tests and shutdown); still one slice per turn. */
  drain(): Promise<void>;
  stop(): void;
}

export interface GcOptions {
  /** Keys one slice may visit. */
  sliceKeysMax: number;
  /** How to wait for the next turn; `setImmediate` in the server, injectable for tests. */
  defer?: (run: () => void) => void;
}

export function createGcScheduler(store: GarbageSource, options: GcOptions): GcScheduler {
  const defer = options.defer ?? ((run) => setImmediate(run));
  let scheduled = false;
  let stopped = false;
  let idleWaiters: (() => void)[] = [];

  const settle = () => {
    const waiters = idleWaiters;
    idleWaiters = [];
    for (const wake of waiters) wake();
  };

  const runSlice = () => {
    scheduled = false;
    if (stopped) return settle();
    const slice = store.collectGarbage(options.sliceKeysMax);
    if (slice.more) schedule();
    else settle();
  };

  const schedule = () => {
    if (scheduled || stopped) return;
    scheduled = true;
    defer(runSlice);
  };

  return {
    kick: schedule,
    drain() {
      if (stopped) return Promise.resolve();
      const idle = new Promise<void>((resolve) => idleWaiters.push(resolve));
      schedule();
      return idle;
    },
    stop() {
      stopped = true;
      settle();
    },
  };
}

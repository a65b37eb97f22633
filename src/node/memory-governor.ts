import type { Timers } from "../timers.ts";

export interface MemoryGovernorOptions {
  /** Resident bytes at which a full collection is asked for. */
  limitBytes: number;
  /** The process's resident bytes now. */
  rss: () => number;
  /** A full, synchronous collection (Bun.gc(true) in a server). */
  collect: () => void;
  timers: Timers;
  /** How often the resident bytes are read. */
  checkMs?: number;
  /** The least time between two collections. */
  gapMs?: number;
  /** The most the gap grows to while collections leave the process at or over the limit. */
  gapMsMax?: number;
}

export interface MemoryGovernor {
  /** Collections asked for so far. */
  readonly collections: number;
  stop(): void;
}

const CHECK_MS = 100;
const GAP_MS = 250;
const GAP_MS_MAX = 8_000;

/**
 * Keeps the process's resident memory under a limit by asking for a full collection when it
 * reaches it. The FLSM engine promises a server that holds about its memtables and block cache
 * however much data it stores; its live memory keeps that promise, but JavaScriptCore grows its
 * heap with the garbage a load makes (requests, blocks read, values copied out) and collects when
 * it sees fit, not when a bound is near: a load of 300 MiB through a server with 4 MiB of memtables
 * and a 16 MiB cache peaked at 380 MiB of RSS. Like Go's GOMEMLIMIT, a soft limit: it makes the
 * collector run sooner, it frees nothing live. When a collection leaves the process at or over the
 * limit (what it holds live is more), the gap to the next one doubles, up to `gapMsMax`, so that
 * the server does not spend its time collecting; one that gets under it resets the gap.
 *
 *   limit 500 MiB:   rss 420 → nothing;  rss 510 → collect → 380 (gap 250 ms)
 *                    rss 530 → collect → 505, over: gap 500 ms → 1 s → … while it stays over
 */
export function startMemoryGovernor(options: MemoryGovernorOptions): MemoryGovernor {
  const { limitBytes, rss, collect, timers } = options;
  const gapMin = options.gapMs ?? GAP_MS;
  const gapMax = options.gapMsMax ?? GAP_MS_MAX;
  let gap = gapMin;
  let collections = 0;
  let last = Number.NEGATIVE_INFINITY;
  const stop = timers.every(options.checkMs ?? CHECK_MS, () => {
    if (rss() < limitBytes || timers.now() - last < gap) return;
    collect();
    collections++;
    last = timers.now();
    gap = rss() < limitBytes ? gapMin : Math.min(gapMax, gap * 2);
  });
  return {
    get collections() {
      return collections;
    },
    stop,
  };
}

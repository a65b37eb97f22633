import type { Timers } from "../timers.ts";

export interface MemoryGovernorOptions {
  /** Resident bytes at which a full collection is asked for. */
  limitBytes: number;
  /** The process's resident bytes now. */
  rss: () => number;
  /** The collected heap's bytes now (what a collection frees shows there at once; in RSS, over seconds). */
  heap: () => number;
  /** A full, synchronous collection (Bun.gc(true) in a server). */
  collect: () => void;
  timers: Timers;
  /** How often the resident bytes are read. */
  checkMs?: number;
  /** The least time between two collections. */
  gapMs?: number;
  /** The most the gap grows to while collections free little. */
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
 * collector run sooner, it frees nothing live. When a collection frees little (under a sixteenth
 * of the limit: what the process holds is live, not garbage), the gap to the next one doubles, up
 * to `gapMsMax`, so that the server does not spend its time collecting; one that frees more resets
 * it. What was freed is read from the heap, not from RSS, which the runtime lowers over seconds as
 * it hands pages back: judged by RSS just after, every collection looked useless.
 *
 *   limit 512 MiB:   rss 420 → nothing;  rss 520 → collect, frees 150 MiB of heap (gap 250 ms)
 *                    rss 530 → collect, frees 5 MiB: gap 500 ms → 1 s → … while they free little
 */
export function startMemoryGovernor(options: MemoryGovernorOptions): MemoryGovernor {
  const { limitBytes, rss, heap, collect, timers } = options;
  const gapMin = options.gapMs ?? GAP_MS;
  const gapMax = options.gapMsMax ?? GAP_MS_MAX;
  let gap = gapMin;
  let collections = 0;
  let last = Number.NEGATIVE_INFINITY;
  const stop = timers.every(options.checkMs ?? CHECK_MS, () => {
    if (rss() < limitBytes || timers.now() - last < gap) return;
    const before = heap();
    collect();
    collections++;
    last = timers.now();
    gap = before - heap() >= limitBytes / 16 ? gapMin : Math.min(gapMax, gap * 2);
  });
  return {
    get collections() {
      return collections;
    },
    stop,
  };
}

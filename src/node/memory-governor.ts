import type { Timers } from "../timers.ts";

export interface MemoryGovernorOptions {
  /** Resident bytes at which the collector is asked to run, concurrently (no pause of the server's thread). */
  softBytes: number;
  /** Resident bytes at which a full collection runs at once (a pause of tens of milliseconds). */
  hardBytes: number;
  /** The process's resident bytes now. */
  rss: () => number;
  /** The collected heap's bytes now (what a full collection frees shows there at once; in RSS, over seconds). */
  heap: () => number;
  /** A collection: full and synchronous (Bun.gc(true)), or asked for and left to the collector (Bun.gc(false)). */
  collect: (full: boolean) => void;
  timers: Timers;
  /** How often the resident bytes are read. */
  checkMs?: number;
  /** The least time between two collections of a kind. */
  gapMs?: number;
  /** The most the gap between full collections grows to while they free little. */
  gapMsMax?: number;
}

export interface MemoryGovernor {
  /** Collections asked for so far: concurrent ones, and full ones. */
  readonly collections: { readonly soft: number; readonly full: number };
  stop(): void;
}

const CHECK_MS = 100;
const GAP_MS = 250;
const GAP_MS_MAX = 8_000;

/**
 * Keeps the process's resident memory under a bound by making the collector run sooner. The FLSM
 * engine promises a server that holds about its memtables and block cache however much data it
 * stores; its live memory keeps that promise, but JavaScriptCore grows its heap with the garbage a
 * load makes (requests, blocks read, values copied out) and collects when it sees fit, not when a
 * bound is near: a load of 300 MiB through a server with 4 MiB of memtables and a 16 MiB cache
 * peaked at 380 MiB of RSS. Like Go's GOMEMLIMIT, a soft limit: it frees nothing live.
 *
 * Two steps, because a full collection stops the server's thread for 20–60 ms (four a second put
 * the engine's p99.9 of Set at 3.5× the memory engine's, against 1.4× without): past `softBytes`
 * the collector is asked to run on its own threads, at most every `gapMs`; only past `hardBytes`,
 * where that did not keep up, does a full collection run. When one frees little (under a sixteenth
 * of the bound: what the process holds is live), the gap to the next doubles, up to `gapMsMax`, so
 * that the server does not spend its time collecting; one that frees more resets it. What was
 * freed is read from the heap, not from RSS, which the runtime lowers over seconds. The gap holds
 * only while the heap stays where the last full collection left it: grown by that sixteenth since,
 * it holds new garbage (a load's requests and blocks; a flat heap for seconds then a burst reached
 * 1.3× the bound while waiting out an 8 s gap), and it is collected at once.
 *
 *   soft 448, hard 512 MiB:  rss 420 → nothing;  470 → asked (concurrent);  520 → full, frees 150
 *                            MiB of heap (gap 250 ms);  530 → full, frees 5: gap 500 ms → 1 s → …
 *                            (heap 40 MiB above what that left: full now, whatever the gap)
 */
export function startMemoryGovernor(options: MemoryGovernorOptions): MemoryGovernor {
  const { softBytes, hardBytes, rss, heap, collect, timers } = options;
  const gapMin = options.gapMs ?? GAP_MS;
  const gapMax = options.gapMsMax ?? GAP_MS_MAX;
  let gap = gapMin;
  const collections = { soft: 0, full: 0 };
  let lastSoft = Number.NEGATIVE_INFINITY;
  let lastFull = Number.NEGATIVE_INFINITY;
  /** The heap as the last full collection left it. */
  let heapAfterFull = Number.POSITIVE_INFINITY;
  const little = hardBytes / 16;
  /**
   * The heap now, when a full collection is due (past the hard bound, and the gap run out or the
   * heap grown); else undefined. Below the bound the heap is not read: the check runs ten times a
   * second.
   */
  const fullDue = (resident: number): number | undefined => {
    if (resident < hardBytes) return undefined;
    const since = timers.now() - lastFull;
    if (since < gapMin) return undefined;
    const before = heap();
    return since >= gap || before - heapAfterFull >= little ? before : undefined;
  };
  const stop = timers.every(options.checkMs ?? CHECK_MS, () => {
    const resident = rss();
    const before = fullDue(resident);
    if (before !== undefined) {
      collect(true);
      collections.full++;
      lastFull = timers.now();
      heapAfterFull = heap();
      gap = before - heapAfterFull >= little ? gapMin : Math.min(gapMax, gap * 2);
    } else if (resident >= softBytes && timers.now() - lastSoft >= gapMin) {
      collect(false);
      collections.soft++;
      lastSoft = timers.now();
    }
  });
  return { collections, stop };
}

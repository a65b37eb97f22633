import { expect, test } from "bun:test";
import { startMemoryGovernor } from "../../src/node/memory-governor.ts";
import { VirtualTime } from "../cluster/replication/sim/virtual-time.ts";

const MiB = 2 ** 20;

/**
 * A process under a governor asking for concurrent collections past 448 MiB and running full ones
 * past 512: its RSS grows by `growth` MiB every 100 ms (the governor checks as often, after the
 * growth). A full collection takes it down to what it holds live at once; a concurrent one, by
 * `concurrentFrees` MiB (what the collector gets done on its own before the next check).
 */
function governed(growth: number, live: number, concurrentFrees = 0) {
  const time = new VirtualTime();
  const state = { rss: live, live };
  const full: number[] = [];
  const soft: number[] = [];
  const timers = time.timersOf({ alive: true, pausedUntil: 0 });
  timers.every(100, () => {
    state.rss += growth;
  });
  const governor = startMemoryGovernor({
    softBytes: 448 * MiB,
    hardBytes: 512 * MiB,
    rss: () => state.rss * MiB,
    // The model's RSS is all heap: a full collection frees what it holds above what is live.
    heap: () => state.rss * MiB,
    collect: (isFull) => {
      if (isFull) {
        state.rss = state.live;
        full.push(time.now);
      } else {
        state.rss = Math.max(state.live, state.rss - concurrentFrees);
        soft.push(time.now);
      }
    },
    timers,
  });
  const runUntil = (ms: number) => time.runUntilDone(() => false, ms, 1_000_000);
  const gaps = () => full.slice(1).map((at, i) => at - full[i]!);
  return { state, governor, full, soft, runUntil, gaps };
}

test("under the soft bound nothing; past it the collector is asked to run, every 250 ms at most, with no full collection while that keeps up", async () => {
  const quiet = governed(0, 400);
  await quiet.runUntil(5_000);
  expect([quiet.soft, quiet.full]).toEqual([[], []]);
  // 440 + 10 a check passes 448 at the first; each concurrent collection takes back 40, more than
  // the 30 that grow in the 300 ms between two.
  const { soft, full, runUntil, governor } = governed(10, 440, 40);
  await runUntil(2_000);
  expect(full).toEqual([]);
  expect(soft.length).toBeGreaterThan(0);
  expect(soft.slice(1).every((at, i) => at - soft[i]! >= 250)).toBe(true);
  expect(governor.collections).toEqual({ soft: soft.length, full: 0 });
});

test("past the hard bound (the concurrent collections did not keep up) a full collection runs", async () => {
  const { full, runUntil } = governed(30, 380);
  await runUntil(1_000);
  // 380 + 30 a check reaches 500 at 400 (soft: asked, frees nothing here), 530 at 500: full, back to 380; again at 1,000.
  expect(full).toEqual([500, 1_000]);
});

test("full collections that free little (the process holds that much live) come ever further apart, up to 8 s; stop ends them", async () => {
  const { governor, full, runUntil, gaps } = governed(0.25, 520);
  await runUntil(30_000);
  expect(full[0]).toBe(100);
  expect(gaps()).toEqual([500, 1_000, 2_000, 4_000, 8_000, 8_000]);
  governor.stop();
  const { soft } = governor.collections;
  await runUntil(60_000);
  expect(governor.collections).toEqual({ soft, full: full.length });
  expect(full.at(-1)).toBeLessThanOrEqual(30_000);
});

test("a full collection that frees much again resets the gap to 250 ms", async () => {
  const { state, full, runUntil, gaps } = governed(1, 520);
  await runUntil(4_000); // over the bound: full collections at 100, 600, 1600, 3600 (next due 7600)
  // What it held went (a Compact), and the heap stands 80 MiB above what the last collection left:
  // collected at the next check, which frees 500 MiB.
  state.live = 100;
  state.rss = 600;
  await runUntil(4_100);
  state.rss = 600; // and grows past the bound again at once: collected 300 ms later, not 1 s
  await runUntil(4_400);
  expect(full).toEqual([100, 600, 1_600, 3_600, 4_100, 4_400]);
  expect(gaps().at(-1)).toBe(300);
});

test("while full collections come far apart, a heap grown by a sixteenth of the bound since the last is collected at once", async () => {
  const { state, full, runUntil } = governed(0.25, 520);
  await runUntil(16_000); // full collections at 100, 600, 1600, 3600, 7600, 15600 (next due 23600)
  state.rss += 40; // a burst of garbage: 41 MiB above what the last full collection left
  await runUntil(16_100);
  expect(full).toEqual([100, 600, 1_600, 3_600, 7_600, 15_600, 16_100]);
  // Not while the gap is under its least: a burst right after a collection waits 250 ms.
  state.rss += 40;
  await runUntil(16_300);
  expect(full.at(-1)).toBe(16_100);
  await runUntil(16_400);
  expect(full.at(-1)).toBe(16_400);
});

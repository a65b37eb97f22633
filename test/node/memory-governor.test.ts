import { expect, test } from "bun:test";
import { startMemoryGovernor } from "../../src/node/memory-governor.ts";
import { VirtualTime } from "../cluster/replication/sim/virtual-time.ts";

const MiB = 2 ** 20;

/**
 * A process under a governor with a 500 MiB limit: its RSS grows by `growth` MiB every 100 ms (the
 * governor checks as often, after the growth) and falls to what it holds live at a collection.
 */
function governed(growth: number, live: number) {
  const time = new VirtualTime();
  const state = { rss: live, live };
  const collectedAt: number[] = [];
  const timers = time.timersOf({ alive: true, pausedUntil: 0 });
  timers.every(100, () => {
    state.rss += growth;
  });
  const governor = startMemoryGovernor({
    limitBytes: 500 * MiB,
    rss: () => state.rss * MiB,
    // The model's RSS is all heap: a collection frees what it holds above what is live.
    heap: () => state.rss * MiB,
    collect: () => {
      state.rss = state.live;
      collectedAt.push(time.now);
    },
    timers,
  });
  const runUntil = (ms: number) => time.runUntilDone(() => false, ms, 1_000_000);
  const gaps = () => collectedAt.slice(1).map((at, i) => at - collectedAt[i]!);
  return { state, governor, collectedAt, runUntil, gaps };
}

test("a collection when RSS reaches the limit, none under it", async () => {
  const { collectedAt, runUntil } = governed(30, 380);
  await runUntil(1_000);
  // 380 + 30 a check reaches 500 at the 4th check; collected back to 380, 4 checks later again.
  expect(collectedAt).toEqual([400, 800]);
});

test("collections that free little (the process holds that much live) come ever further apart, up to 8 s; stop ends them", async () => {
  const { governor, collectedAt, runUntil, gaps } = governed(0.25, 520);
  await runUntil(30_000);
  expect(collectedAt[0]).toBe(100);
  expect(gaps()).toEqual([500, 1_000, 2_000, 4_000, 8_000, 8_000]);
  expect(governor.collections).toBe(collectedAt.length);
  governor.stop();
  await runUntil(60_000);
  expect(governor.collections).toBe(collectedAt.length);
  expect(collectedAt.at(-1)).toBeLessThanOrEqual(30_000);
});

test("a collection that frees much again resets the gap to 250 ms", async () => {
  const { state, collectedAt, runUntil, gaps } = governed(1, 520);
  await runUntil(4_000); // over the limit: collections at 100, 600, 1600, 3600 (next due 7600)
  state.live = 100; // what it held went (a Compact): the next collection frees 500 MiB
  state.rss = 600;
  await runUntil(7_600);
  state.rss = 600; // and grows past it again at once: collected 300 ms later, not 16 s
  await runUntil(7_900);
  expect(collectedAt).toEqual([100, 600, 1_600, 3_600, 7_600, 7_900]);
  expect(gaps().at(-1)).toBe(300);
});

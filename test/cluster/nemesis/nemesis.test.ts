import { afterEach, expect, test } from "bun:test";
import type { FaultKind } from "./nemeses.ts";
import { DEFAULT_SETTINGS, type NemesisReport, PARTITIONED_SETTINGS, runNemesis, summarize } from "./run.ts";

/**
 * Real-process fault tests, bounded for `npm test`: each run is a few seconds of faults on a
 * cluster of `homekv serve` processes with clients on every member, then the checks of run.ts.
 * Longer and more varied runs: `npm run cluster:soak`. Each run prints its settings and the
 * command that replays its schedule of faults; NEMESIS_SEED picks another seed for all of them.
 */
const seedBase = Number(process.env.NEMESIS_SEED ?? 1);

const stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.splice(0)) await stop();
});

async function run(
  size: number,
  faults: FaultKind[],
  seconds: number,
  seedOffset: number,
  partitions?: number,
): Promise<NemesisReport> {
  const partitioned = partitions === undefined ? {} : { partitions, ...PARTITIONED_SETTINGS };
  const settings = {
    ...DEFAULT_SETTINGS,
    seed: seedBase + seedOffset,
    size,
    faults,
    seconds,
    ...partitioned,
  };
  const report = await runNemesis(settings, (stop) => stops.push(stop));
  console.log(summarize(report));
  if (report.problems.length > 0) console.log(report.logs);
  expect(report.problems).toEqual([]);
  return report;
}

test("3 members: kill -9 and restart, SIGSTOP/SIGCONT, partitions, an isolated leader and a member added and removed; the history is linearizable and no acknowledged write is lost", async () => {
  await run(3, ["kill", "pause", "partition", "isolate-leader", "membership"], 15, 0);
}, 60_000);

test("5 members: partitions into a minority and a majority, an isolated leader and pauses; the history is linearizable", async () => {
  await run(5, ["partition", "isolate-leader", "pause"], 12, 100);
}, 60_000);

test("3 members: kill -9 of every member at once, then all restarted; no acknowledged write is lost", async () => {
  await run(3, ["kill-all"], 12, 200);
}, 60_000);

test("5 members, 64 partitions checkpointing every 16 entries: kill -9 and restart, SIGSTOP/SIGCONT, partitions of the links and a node added and removed (its partitions moving), keys read and written in pairs; the history is linearizable (no Get saw half a Set)", async () => {
  await run(5, ["kill", "pause", "partition", "membership"], 12, 300, 64);
}, 90_000);

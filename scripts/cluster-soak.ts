/**
 * A soak of the real-process fault tests (test/cluster/nemesis): run after run of a cluster of
 * `homekv serve` processes under faults, longer and more varied than `npm test`'s, each checked as
 * there (linearizable history, no acknowledged write lost, every member answering after the heal).
 * Bounded by --runs and --seconds (per run). Each run prints its settings and the command that
 * replays its schedule of faults (the timing of real processes is the run's own); the exit status is
 * 1 if any run failed.
 *
 *   npm run cluster:soak -- [--runs 10] [--seconds 30] [--seed 1000] [--size 3|5] [--faults kill,pause,...]
 *                           [--partitions P]
 *
 * Without --size, runs alternate 3 and 5 members; without --faults, every kind is dealt. With
 * --partitions, the members run a partitioned cluster (3 replicas a partition) and the clients read
 * and write keys in pairs (leave out the faults it cannot take yet: isolate-leader, membership).
 */
import { parseArgs } from "node:util";
import { FAULT_KINDS, type FaultKind } from "../test/cluster/nemesis/nemeses.ts";
import {
  DEFAULT_SETTINGS,
  type NemesisReport,
  PARTITIONED_SETTINGS,
  runNemesis,
  summarize,
} from "../test/cluster/nemesis/run.ts";

const { values } = parseArgs({
  options: {
    runs: { type: "string", default: "10" },
    seconds: { type: "string", default: "30" },
    seed: { type: "string", default: "1000" },
    size: { type: "string" },
    faults: { type: "string", default: FAULT_KINDS.join(",") },
    partitions: { type: "string" },
  },
});
const runs = Number(values.runs);
const seconds = Number(values.seconds);
const firstSeed = Number(values.seed);
const partitions = values.partitions === undefined ? undefined : Number(values.partitions);
const sizes = values.size === undefined ? [3, 5] : [Number(values.size)];
const faults = values.faults.split(",").filter((f) => f !== "");
const unknownFaults = faults.filter((f) => !(FAULT_KINDS as readonly string[]).includes(f));
if (
  !Number.isSafeInteger(runs) ||
  runs < 1 ||
  !(seconds >= 1 && seconds <= 3_600) ||
  !Number.isSafeInteger(firstSeed) ||
  sizes.some((size) => !Number.isSafeInteger(size) || size < 3 || size > 7) ||
  faults.length === 0 ||
  unknownFaults.length > 0 ||
  (partitions !== undefined && !(Number.isSafeInteger(partitions) && partitions >= 2))
) {
  console.error(
    `usage: npm run cluster:soak -- [--runs N ≥ 1] [--seconds 1..3600] [--seed N] [--size 3..7] [--faults ${FAULT_KINDS.join(",")}] [--partitions P ≥ 2]`,
  );
  process.exit(2);
}

const started = performance.now();
const failed: NemesisReport[] = [];
for (let i = 0; i < runs; i++) {
  const settings = {
    ...DEFAULT_SETTINGS,
    seed: firstSeed + i,
    size: sizes[i % sizes.length]!,
    faults: faults as FaultKind[],
    seconds,
    ...(partitions === undefined ? {} : { partitions, ...PARTITIONED_SETTINGS }),
  };
  const report = await runNemesis(settings);
  console.log(`run ${i + 1}/${runs} ${summarize(report)}`);
  if (report.problems.length > 0) {
    failed.push(report);
    for (const problem of report.problems) console.log(`  ${problem.replaceAll("\n", "\n  ")}`);
    console.log(report.logs);
  }
}
const minutes = (performance.now() - started) / 60_000;
console.log(`cluster soak: ${runs - failed.length} of ${runs} runs passed in ${minutes.toFixed(1)} min`);
for (const report of failed) console.log(`  failed: ${report.replay}`);
process.exit(failed.length === 0 ? 0 : 1);

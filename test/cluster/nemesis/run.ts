import { mulberry32 } from "../../../src/random.ts";
import { waitFor } from "../../helpers/wait.ts";
import { checkLinearizability } from "../../linearizability/checker.ts";
import { kvModel } from "../../linearizability/kv-model.ts";
import { Cluster, type Member } from "./cluster.ts";
import { type FaultKind, runSchedule, type ScheduleLog } from "./nemeses.ts";
import {
  type Counts,
  type KvOperation,
  readOne,
  registerKey,
  runWorkload,
  SET_PREFIX,
  type WorkloadResult,
} from "./workload.ts";

/** Everything a run depends on besides timing: the same settings replay the same schedule of faults. */
export interface NemesisSettings {
  seed: number;
  size: number;
  faults: readonly FaultKind[];
  /** How long clients and faults run; then every fault heals and the checks begin. */
  seconds: number;
  clientsPerMember: number;
  keys: number;
  tickMs: number;
  callTimeoutMs: number;
  faultMs: readonly [number, number];
  calmMs: readonly [number, number];
  /** `--partitions` of every member (undefined: one Raft group); its workload then reads and writes keys in pairs. */
  partitions?: number;
}

export const DEFAULT_SETTINGS: Omit<NemesisSettings, "seed" | "size" | "faults" | "seconds"> = {
  clientsPerMember: 2,
  keys: 4,
  tickMs: 50,
  callTimeoutMs: 1_000,
  faultMs: [800, 2_500],
  calmMs: [300, 1_200],
};

/**
 * What a partitioned run changes: its history is harder to check (operations on key pairs, slower
 * two-phase writes), so four pairs of keys, one client per member and calls given 3 s keep the
 * operations whose outcome is unknown, which the checker's search branches on, few enough for its
 * budget.
 */
export const PARTITIONED_SETTINGS = { keys: 8, clientsPerMember: 1, callTimeoutMs: 3_000 } as const;

/** After the last fault heals, every member must answer a linearizable read within this. */
export const RECOVERY_MS_MAX = 15_000;
/** The checker's time budget; a history it cannot decide within it fails the run (no verdict is no pass). */
const CHECK_BUDGET_MS = 20_000;
/** Fewer acknowledged writes than this and a run proves nothing: it fails. */
const ACKNOWLEDGED_WRITES_MIN = 20;

export interface NemesisReport {
  settings: NemesisSettings;
  /** The command that runs these settings again. */
  replay: string;
  /** Why the run failed; empty when it passed. */
  problems: string[];
  counts: Counts;
  operations: number;
  /** Register writes that answered (puts and transactions; the inserts are counted apart). */
  acknowledgedWrites: number;
  /** The longest stretch of the run with no write acknowledged anywhere: what the faults cost in availability. */
  longestWriteGapMs: number;
  /** From the heal to every member answering a linearizable read. */
  recoveryMs: number;
  checkMs: number;
  schedule: ScheduleLog;
  /** The members' logs, kept only when the run failed. */
  logs: string;
}

export function replayCommand(settings: NemesisSettings): string {
  const { seed, size, faults, seconds, partitions } = settings;
  const partitioned = partitions === undefined ? "" : ` --partitions ${partitions}`;
  return `npm run cluster:soak -- --runs 1 --seed ${seed} --size ${size} --faults ${faults.join(",")} --seconds ${seconds}${partitioned}`;
}

/** The run in a few lines: settings, counts, figures, the faults with their times, the replay command. */
export function summarize(report: NemesisReport): string {
  const { settings, counts, operations, acknowledgedWrites, checkMs, recoveryMs, longestWriteGapMs } = report;
  return [
    `${report.problems.length === 0 ? "passed" : "FAILED"}: seed ${settings.seed}, ${settings.size} members, ` +
      `${settings.faults.join("+")} for ${settings.seconds} s: ${counts.ok} ok, ${counts.fail} refused, ${counts.info} unknown`,
    `  ${operations} operations (${acknowledgedWrites} acknowledged writes) checked in ${checkMs.toFixed(0)} ms; longest stretch without an acknowledged write ` +
      `${(longestWriteGapMs / 1000).toFixed(1)} s; every member answered ${recoveryMs.toFixed(0)} ms after the heal`,
    `  faults: ${report.schedule.join("; ")}`,
    `  replay: ${report.replay}`,
  ].join("\n");
}

/**
 * One run: a cluster of real processes, clients on every member for `seconds` while the faults
 * come and go, then every fault healed and four checks — every member answers a linearizable read
 * within RECOVERY_MS_MAX; every acknowledged insert-only key is on every member (and no key that
 * was never written); the history with every member's final reads appended is linearizable; no
 * answer came that no fault explains.
 */
export async function runNemesis(
  settings: NemesisSettings,
  /** Given the cluster's stop as soon as it runs: a test's afterEach stops it even if the test times out. */
  onStarted?: (stop: () => Promise<void>) => void,
): Promise<NemesisReport> {
  const cluster = await Cluster.start({
    size: settings.size,
    tickMs: settings.tickMs,
    callTimeoutMs: settings.callTimeoutMs,
    partitions: settings.partitions,
  });
  onStarted?.(() => cluster.stop());
  const problems: string[] = [];
  try {
    // Two streams, so that the schedule of faults does not depend on how many operations ran.
    const workloadRandom = mulberry32(settings.seed);
    const faultRandom = mulberry32(settings.seed ^ 0x5bd1e995);
    const untilMs = performance.now() + settings.seconds * 1000;
    const [workload, schedule] = await Promise.all([
      runWorkload({
        ...settings,
        members: cluster.members,
        random: workloadRandom,
        untilMs,
        multiKey: settings.partitions !== undefined,
      }),
      runSchedule(cluster, { kinds: settings.faults, random: faultRandom, untilMs, ...settings }),
    ]);
    await cluster.healAll();

    const healedAt = performance.now();
    await Promise.all(cluster.members.map((member) => answersReads(member))).catch((error: Error) =>
      problems.push(error.message),
    );
    const recoveryMs = performance.now() - healedAt;

    if (problems.length === 0) {
      await appendFinalReads(cluster.members, settings.keys, workload.history).catch((error: Error) =>
        problems.push(`a final read failed after recovery: ${error.message}`),
      );
      for (const member of cluster.members) problems.push(...(await checkInserts(member, workload)));
    }
    if (workload.unexpected.length > 0)
      problems.push(`answers no fault explains: ${[...new Set(workload.unexpected)].slice(0, 5).join(" / ")}`);
    const acknowledgedWrites = workload.history.filter((op) => op.input.op !== "get" && Number.isFinite(op.ret));
    if (acknowledgedWrites.length < ACKNOWLEDGED_WRITES_MIN)
      problems.push(`only ${acknowledgedWrites.length} writes were acknowledged: too few for the run to show anything`);

    const verdict = checkLinearizability(workload.history, kvModel, { timeoutMs: CHECK_BUDGET_MS });
    if (verdict.result === "illegal") problems.push(`the history is not linearizable:\n${verdict.explanation}`);
    if (verdict.result === "unknown") problems.push(verdict.explanation);

    return {
      settings,
      replay: replayCommand(settings),
      problems,
      counts: workload.counts,
      operations: workload.history.length,
      acknowledgedWrites: acknowledgedWrites.length,
      longestWriteGapMs: longestGapMs(acknowledgedWrites.map((op) => op.ret)),
      recoveryMs,
      checkMs: verdict.elapsedMs,
      schedule,
      logs: problems.length === 0 ? "" : cluster.members.map((m) => `=== ${m.name} ===\n${m.log()}`).join("\n"),
    };
  } finally {
    await cluster.stop();
  }
}

/** Waits until the member answers a linearizable read (its leader confirmed, its log applied far enough). */
async function answersReads(member: Member): Promise<void> {
  let last = "";
  await waitFor(
    async () => {
      try {
        await member.client!.get([registerKey(0)]);
        return true;
      } catch (error) {
        last = error instanceof Error ? error.message : String(error);
        return false;
      }
    },
    {
      what: `${member.name} to answer a linearizable read after every fault healed`,
      timeoutMs: RECOVERY_MS_MAX,
      intervalMs: 100,
      detail: () => `its last answer: ${last}`,
    },
  );
}

/**
 * Every member reads every register key once more, after every client stopped: these reads come
 * after every acknowledged write in real time, so a write lost by any member makes them illegal.
 */
async function appendFinalReads(members: readonly Member[], keys: number, history: KvOperation[]): Promise<void> {
  for (const member of members) {
    for (let k = 0; k < keys; k++) {
      const key = registerKey(k);
      const call = performance.now();
      const values = [await readOne(member.client!, key)];
      history.push({
        client: `final.${member.name}`,
        input: { op: "get", keys: [key] },
        output: { values },
        call,
        ret: performance.now(),
      });
    }
  }
}

/** Every acknowledged insert-only key is on the member; nothing is there that no client wrote. */
async function checkInserts(member: Member, workload: WorkloadResult): Promise<string[]> {
  const present = new Set<string>();
  for await (const record of member.client!.scan({ prefix: SET_PREFIX, keysOnly: true })) present.add(record.key);
  const lost = [...workload.acknowledged].filter((key) => !present.has(key));
  const phantom = [...present].filter((key) => !workload.acknowledged.has(key) && !workload.uncertain.has(key));
  const problems: string[] = [];
  if (lost.length > 0)
    problems.push(
      `${member.name} lost ${lost.length} of ${workload.acknowledged.size} acknowledged inserts: ${lost.slice(0, 5).join(", ")}`,
    );
  if (phantom.length > 0) problems.push(`${member.name} holds keys no client wrote: ${phantom.slice(0, 5).join(", ")}`);
  return problems;
}

/** The longest time between two successive instants of `times`. */
function longestGapMs(times: number[]): number {
  const sorted = times.toSorted((a, b) => a - b);
  return sorted.reduce((longest, time, i) => (i === 0 ? 0 : Math.max(longest, time - sorted[i - 1]!)), 0);
}

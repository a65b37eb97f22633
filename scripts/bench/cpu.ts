/** CPU time of processes and the load of the machine, read from /proc (Linux). */
import { readFileSync } from "node:fs";
import { loadavg } from "node:os";

/** Clock ticks per second of /proc/PID/stat's times (USER_HZ: 100 on Linux). */
const TICKS_PER_SECOND = 100;

/** utime + stime of process `pid` (all its threads), in seconds. */
export function cpuSeconds(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  // The fields after the command name (which may hold spaces) in parentheses.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / TICKS_PER_SECOND;
}

/**
 * CPU seconds every process of the machine has used since boot, all cores together (/proc/stat's
 * first line: every field but idle, iowait and steal): with `cpuSeconds` of one's own processes, what
 * others ran beside a measurement on a shared machine.
 */
export function machineBusySeconds(): number {
  const [, ...fields] = readFileSync("/proc/stat", "utf8").split("\n")[0]!.trim().split(/\s+/);
  // user nice system idle iowait irq softirq steal (guest time is within user already).
  const ticks = fields.slice(0, 8).map(Number);
  return (ticks.reduce((sum, n) => sum + n, 0) - ticks[3]! - ticks[4]! - ticks[7]!) / TICKS_PER_SECOND;
}

/**
 * write(2)-family system calls process `pid` made so far (/proc/PID/io's syscw): a member's log
 * appends, so fewer per request means larger batches per fsync. Socket sends (sendto) are not counted.
 */
export function writeCalls(pid: number): number {
  const line = readFileSync(`/proc/${pid}/io`, "utf8")
    .split("\n")
    .find((entry) => entry.startsWith("syscw:"));
  return Number(line?.slice("syscw:".length));
}

/** The 1, 5 and 15 minute load averages, as "3.1, 2.8, 2.5". */
export function loadAverage(): string {
  return loadavg()
    .map((average) => average.toFixed(1))
    .join(", ");
}

/** When servers count as quiet (cpuQuiet); what is left out takes its default. */
export interface QuietRule {
  windowMs?: number;
  fraction?: number;
  waitMsMax?: number;
}

/**
 * A smoke run's rule (`--quick`): the run checks that every path works, not its figures, so a
 * shorter window will do; the suite makes many such runs.
 */
export const SMOKE_QUIET: QuietRule = { windowMs: 100 };

/**
 * Waits until processes `pids` together used less than `fraction` of one core over `windowMs`,
 * for at most `waitMsMax`; says whether they did. A measurement starts on quiet servers: what one
 * system still does after its load (a checkpoint, garbage collection, a backend commit) would
 * otherwise run during the next system's.
 */
export async function cpuQuiet(
  pids: readonly number[],
  { windowMs = 500, fraction = 0.15, waitMsMax = 15_000 }: QuietRule = {},
): Promise<boolean> {
  const total = () => pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const deadline = performance.now() + waitMsMax;
  while (performance.now() < deadline) {
    const before = total();
    const started = performance.now();
    await Bun.sleep(windowMs);
    if ((total() - before) / ((performance.now() - started) / 1000) < fraction) return true;
  }
  return false;
}

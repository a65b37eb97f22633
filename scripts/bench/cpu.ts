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

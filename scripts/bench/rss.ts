/** Resident memory of processes, read from /proc (Linux). */
import { readFileSync } from "node:fs";

/** VmRSS of process `pid` (or of this one), in bytes. */
export function rssBytes(pid: number | "self"): number {
  return statusBytes(pid, "VmRSS");
}

/** VmHWM of process `pid`: the most it has ever held resident, in bytes. */
export function peakRssBytes(pid: number | "self"): number {
  return statusBytes(pid, "VmHWM");
}

function statusBytes(pid: number | "self", field: "VmRSS" | "VmHWM"): number {
  const line = new RegExp(`^${field}:\\s+(\\d+)\\s+kB`, "m").exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!line) throw new Error(`no ${field} in /proc/${pid}/status`);
  return Number(line[1]) * 1024;
}

/** When RSS counts as settled: every sample of the last `windowMs` within `tolerance` of their minimum. */
export interface SettleRule {
  intervalMs: number;
  windowMs: number;
  /** 0.01: the samples of the window differ by at most 1% of the smallest. */
  tolerance: number;
  /** Give up waiting after this long and report the last samples (`settled` false). */
  waitMsMax: number;
}

/**
 * The RSS of each process once it has stopped moving. After a load a runtime hands its garbage back
 * over seconds (JavaScriptCore after a bulk load of a million keys: 359 B/key at once, 278 after
 * 10 s), and what an idle loaded server holds is what its users pay for.
 */
export async function settledRss(
  pids: readonly number[],
  rule: SettleRule,
): Promise<{ bytes: number[]; settled: boolean }> {
  const windowSamples = Math.max(2, Math.round(rule.windowMs / rule.intervalMs) + 1);
  const samplesMax = Math.ceil(rule.waitMsMax / rule.intervalMs) + 1;
  const series: number[][] = pids.map(() => []);
  for (let taken = 1; ; taken++) {
    for (const [i, pid] of pids.entries()) series[i]!.push(rssBytes(pid));
    const settled = series.every((samples) => {
      const window = samples.slice(-windowSamples);
      return (
        window.length === windowSamples &&
        Math.max(...window) - Math.min(...window) <= Math.min(...window) * rule.tolerance
      );
    });
    if (settled || taken >= samplesMax) return { bytes: series.map((samples) => samples.at(-1)!), settled };
    await Bun.sleep(rule.intervalMs);
  }
}

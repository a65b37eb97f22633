/** Resident memory of processes, read from /proc (Linux). */
import { readFileSync } from "node:fs";

/** VmRSS of process `pid`, in bytes. */
export function rssBytes(pid: number): number {
  const line = /^VmRSS:\s+(\d+) kB$/m.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!line) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(line[1]) * 1024;
}

/**
 * The RSS of each process once it is at rest: sampled every 500 ms until, for every process, the
 * samples of the last `settleMs` differ by under 2% (a runtime hands back a load's garbage over
 * seconds), or `timeoutMs` passed; `settled` says which.
 */
export async function restingRss(
  pids: readonly number[],
  options: { settleMs: number; timeoutMs: number },
): Promise<{ bytes: number[]; settled: boolean }> {
  const intervalMs = 500;
  const window = Math.max(2, Math.ceil(options.settleMs / intervalMs) + 1);
  const samples: number[][] = pids.map(() => []);
  const deadline = performance.now() + options.timeoutMs;
  const roundsMax = Math.ceil(options.timeoutMs / intervalMs) + 1;
  for (let round = 1; ; round++) {
    pids.forEach((pid, i) => {
      samples[i]!.push(rssBytes(pid));
      if (samples[i]!.length > window) samples[i]!.shift();
    });
    const settled = samples.every(
      (series) => series.length === window && Math.max(...series) - Math.min(...series) < 0.02 * Math.max(...series),
    );
    if (settled || round >= roundsMax || performance.now() >= deadline)
      return { bytes: samples.map((series) => series.at(-1)!), settled };
    await Bun.sleep(intervalMs);
  }
}

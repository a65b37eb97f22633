#!/usr/bin/env bun
/**
 * Memory across a restart (issue 16, section 3): does a store that fits in memory while it runs
 * still fit after a restart?
 *
 *   bun scripts/bench-restart-memory.ts [--keys 500000] [--value-bytes 100] [--stop SIGTERM|SIGKILL] [--json]
 *
 * Loads --keys 16-byte keys with --value-bytes values through gRPC into a real `homekv serve
 * --data-dir`, waits for its RSS to settle (the writer's RSS), stops it (SIGTERM: a checkpoint at
 * shutdown, the next start loads it; SIGKILL: the next start replays the WAL), starts it again on the
 * same directory, samples its VmRSS every 20 ms while it recovers and reads its VmHWM once its RSS
 * has settled. Prints the writer's RSS, the restart's peak and settled RSS, and their ratios to the
 * writer's (target: peak ≤ 1.3×). ~1 min for 500,000 keys on the project's machine.
 */
import { measureRestartMemory } from "./bench/restart-memory.ts";

const PEAK_RATIO_TARGET = 1.3;

function usage(message: string): never {
  console.error(
    `bench-restart-memory: ${message} (usage: bun scripts/bench-restart-memory.ts [--keys N] [--value-bytes N] [--stop SIGTERM|SIGKILL] [--json])`,
  );
  process.exit(2);
}

const flags = { keys: 500_000, valueBytes: 100, stop: "SIGTERM" as "SIGTERM" | "SIGKILL", json: false };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const arg = argv[i]!;
  const next = () => argv[++i] ?? usage(`${arg} needs a value`);
  const whole = (text: string, low: number, high: number) => {
    const n = Number(text);
    if (!Number.isInteger(n) || n < low || n > high) usage(`${arg} must be a whole number from ${low} to ${high}`);
    return n;
  };
  if (arg === "--keys") flags.keys = whole(next(), 1_000, 20_000_000);
  else if (arg === "--value-bytes") flags.valueBytes = whole(next(), 1, 65_536);
  else if (arg === "--stop") {
    const stop = next();
    if (stop !== "SIGTERM" && stop !== "SIGKILL") usage("--stop is SIGTERM or SIGKILL");
    flags.stop = stop;
  } else if (arg === "--json") flags.json = true;
  else usage(`unknown argument ${JSON.stringify(arg)}`);
}

const mib = (bytes: number) => `${(bytes / 2 ** 20).toFixed(1)} MiB`;
const progress = (line: string) => {
  if (process.stderr.isTTY) console.error(`  … ${line}`);
};

const result = await measureRestartMemory({
  keys: flags.keys,
  valueBytes: flags.valueBytes,
  stop: flags.stop,
  // The same rule as bench-mvcc's server RSS: within 1% over 5 s, samples 1 s apart, 40 s at most.
  settle: { intervalMs: 1_000, windowMs: 5_000, tolerance: 0.01, waitMsMax: 40_000 },
  stepTimeoutMs: 600_000,
  progress,
});

const peakRatio = result.restartPeakBytes / result.writerRssBytes;
if (flags.json) console.log(JSON.stringify({ ...flags, ...result, peakRatio }));
else {
  const { writerRssBytes: writer } = result;
  const lines = [
    `# HomeKV restart memory — ${new Date().toISOString()}, Bun ${Bun.version}`,
    `${flags.keys.toLocaleString("en-US")} keys, ${flags.valueBytes}-byte values, stopped with ${flags.stop}; load ${(result.loadMs / 1000).toFixed(1)} s; data dir ${mib(result.dataDirBytes)}`,
    `writer:   settled RSS ${mib(writer)} (peak during the load ${mib(result.writerPeakBytes)})`,
    `restart:  ${result.recoveryLine}`,
    `          listening after ${(result.readyMs / 1000).toFixed(1)} s, RSS then ${mib(result.readyRssBytes)} (${(result.readyRssBytes / writer).toFixed(2)}×)`,
    `          peak (VmHWM) ${mib(result.restartPeakBytes)} = ${peakRatio.toFixed(2)}× the writer's RSS (target ≤ ${PEAK_RATIO_TARGET}×: ${peakRatio <= PEAK_RATIO_TARGET ? "met" : "MISSED"})`,
    `          settled RSS ${mib(result.settledRssBytes)} = ${(result.settledRssBytes / writer).toFixed(2)}×${result.settled ? "" : " (had not settled within 40 s)"}`,
    `          RSS while recovering (s: MiB): ${thin(result.samples)}`,
  ];
  console.log(lines.join("\n"));
}

/** About a dozen of the samples, evenly spread, for a glance at the curve. */
function thin(samples: [number, number][]): string {
  const step = Math.max(1, Math.ceil(samples.length / 12));
  return samples
    .filter((_, i) => i % step === 0 || i === samples.length - 1)
    .map(([ms, bytes]) => `${(ms / 1000).toFixed(1)}: ${(bytes / 2 ** 20).toFixed(0)}`)
    .join(", ");
}

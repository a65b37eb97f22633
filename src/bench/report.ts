import type { BenchResult } from "./run-bench.ts";

/** The human report of one run: throughput, latency percentiles in ms, errors by status. */
export function formatBenchReport(title: string, result: BenchResult): string {
  const ms = (us: number) => (us / 1000).toFixed(us < 10_000 ? 2 : 1);
  const { latencyUs: l } = result;
  const errors = Object.entries(result.errors);
  return [
    title,
    `  requests   ${result.requests} in ${(result.elapsedMs / 1000).toFixed(2)} s`,
    `  throughput ${Math.round(result.requestsPerSecond)} requests/s, ${Math.round(result.keysPerSecond)} keys/s`,
    `  latency ms p50 ${ms(l.p50)}  p90 ${ms(l.p90)}  p99 ${ms(l.p99)}  p99.9 ${ms(l.p999)}  max ${ms(l.max)}`,
    `  errors     ${errors.length === 0 ? "none" : errors.map(([name, count]) => `${name} ×${count}`).join(", ")}`,
  ].join("\n");
}

import { status as Status } from "@grpc/grpc-js";
import * as hdr from "hdr-histogram-js";
import type { H2Pool } from "./h2-unary.ts";
import type { BenchRequest } from "./workload.ts";

export interface BenchRunOptions {
  pool: H2Pool;
  next: () => BenchRequest;
  /** Requests in flight at once. */
  concurrency: number;
  /** Stop after this many requests... */
  requests?: number;
  /** ...or after this long, whichever comes first. At least one must be given. */
  durationMs?: number;
  /**
   * Open loop: start requests at this many per second (still at most `concurrency` in flight). A
   * request that could not go out when due, because all workers were waiting on the server, is
   * timed from when it was due, so that a server that falls behind is charged for the queue it
   * causes (no coordinated omission).
   */
  ratePerSecond?: number;
  /**
   * Send requests this long before measuring, and count none of them: a JIT runtime (the server's, and
   * this client's) runs its hot paths slowly until they are compiled, which in a run of seconds is
   * a large share of it. `requests` and `durationMs` count from the end of the warm-up.
   */
  warmupMs?: number;
  /** Called about ten times a second with the requests done so far. */
  onProgress?: (done: number) => void;
}

export interface LatencySummary {
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

export interface BenchResult {
  requests: number;
  keys: number;
  elapsedMs: number;
  requestsPerSecond: number;
  keysPerSecond: number;
  /** Microseconds, over every request that completed (errors included). */
  latencyUs: LatencySummary;
  /** Status name → count, for every request that did not end OK. */
  errors: Record<string, number>;
}

/**
 * Runs `concurrency` workers, each sending its next request when its last one returned (closed
 * loop), or when the next one is due (open loop, with `ratePerSecond`).
 */
export async function runBench(options: BenchRunOptions): Promise<BenchResult> {
  if (options.requests === undefined && options.durationMs === undefined)
    throw new Error("a benchmark needs -n or --duration");
  const histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 3_600_000_000,
    numberOfSignificantValueDigits: 3,
  });
  const errors: Record<string, number> = {};
  const started = performance.now();
  const warmupMs = options.warmupMs ?? 0;
  const measuredFrom = started + warmupMs;
  const deadline = options.durationMs === undefined ? Infinity : measuredFrom + options.durationMs;
  const budget = options.requests ?? Infinity;
  /** Requests started, warm-up included (the open loop's schedule); `issued` counts the measured ones. */
  let scheduled = 0;
  let issued = 0;
  let done = 0;
  let keys = 0;

  const progress = options.onProgress && setInterval(() => options.onProgress!(done), 100);
  const worker = async () => {
    while (performance.now() < deadline) {
      const index = scheduled++;
      let sent = performance.now();
      if (options.ratePerSecond !== undefined) {
        const due = started + (index * 1000) / options.ratePerSecond;
        if (due > deadline) break;
        // Early: wait, and time from the actual send (the timer's own lateness is not the server's).
        // Late, because every worker was busy: time from when it was due (the queue is the server's).
        if (due > sent) {
          await Bun.sleep(due - sent);
          sent = performance.now();
        } else sent = due;
      }
      const measured = sent >= measuredFrom;
      if (measured && issued++ >= budget) break;
      const request = options.next();
      const result = await options.pool.call(request.path, request.message);
      if (!measured) continue;
      histogram.recordValue(Math.max(1, Math.round((performance.now() - sent) * 1000)));
      done++;
      if (result.status === 0) keys += request.keys;
      else {
        const name =
          result.status < 0 ? `TRANSPORT (${result.message})` : (Status[result.status] ?? `STATUS_${result.status}`);
        errors[name] = (errors[name] ?? 0) + 1;
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: options.concurrency }, worker));
  } finally {
    if (progress) clearInterval(progress);
  }
  const elapsedMs = performance.now() - measuredFrom;
  // A percentile is the top of its histogram bucket, which may lie past the largest value recorded.
  const at = (percentile: number) => Math.min(histogram.getValueAtPercentile(percentile), histogram.maxValue);
  return {
    requests: done,
    keys,
    elapsedMs,
    requestsPerSecond: done / (elapsedMs / 1000),
    keysPerSecond: keys / (elapsedMs / 1000),
    latencyUs: { p50: at(50), p90: at(90), p99: at(99), p999: at(99.9), max: histogram.maxValue, mean: histogram.mean },
    errors,
  };
}

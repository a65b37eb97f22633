import { ResponderBuilder, ServerInterceptingCall, type ServerInterceptor, status as Status } from "@grpc/grpc-js";

/** Upper bounds (seconds) of the latency histogram's buckets; +Inf is implied. */
export const LATENCY_BUCKETS_S = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
] as const;

export interface LatencyHistogram {
  /** Calls at or under each bound of LATENCY_BUCKETS_S (not cumulative: one count per bucket, then +Inf last). */
  readonly buckets: number[];
  count: number;
  sumSeconds: number;
}

export interface RpcStats {
  /** Finished calls by method path ("/package.Service/Method") and status code name ("OK", "NOT_FOUND"...). */
  readonly calls: Map<string, Map<string, number>>;
  /** Time from the call reaching the server to its status being sent, by method path. */
  readonly latency: Map<string, LatencyHistogram>;
}

export function createRpcStats(): RpcStats {
  return { calls: new Map(), latency: new Map() };
}

const STATUS_NAMES = new Map<number, string>(
  Object.entries(Status)
    .filter(([, code]) => typeof code === "number")
    .map(([name, code]) => [code as number, name]),
);

export function statusName(code: number): string {
  return STATUS_NAMES.get(code) ?? String(code);
}

export function recordCall(stats: RpcStats, method: string, code: number, seconds: number): void {
  const byStatus = stats.calls.get(method) ?? new Map<string, number>();
  stats.calls.set(method, byStatus);
  const name = statusName(code);
  byStatus.set(name, (byStatus.get(name) ?? 0) + 1);
  let histogram = stats.latency.get(method);
  if (!histogram) {
    histogram = { buckets: new Array<number>(LATENCY_BUCKETS_S.length + 1).fill(0), count: 0, sumSeconds: 0 };
    stats.latency.set(method, histogram);
  }
  let bucket = LATENCY_BUCKETS_S.findIndex((bound) => seconds <= bound);
  if (bucket === -1) bucket = LATENCY_BUCKETS_S.length;
  histogram.buckets[bucket] = (histogram.buckets[bucket] ?? 0) + 1;
  histogram.count++;
  histogram.sumSeconds += seconds;
}

/** A server interceptor that counts every call by method and final status, and times it. */
export function rpcStatsInterceptor(stats: RpcStats, now: () => number = () => performance.now()): ServerInterceptor {
  return (method, call) => {
    const startedMs = now();
    return new ServerInterceptingCall(
      call,
      new ResponderBuilder()
        .withSendStatus((status, next) => {
          recordCall(stats, method.path, status.code, Math.max(0, now() - startedMs) / 1000);
          next(status);
        })
        .build(),
    );
  };
}

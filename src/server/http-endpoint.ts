/**
 * `serve --http-port`: a small HTTP endpoint beside the gRPC port, for scrapers and orchestrators.
 *   GET /metrics  Prometheus text exposition (the Metrics RPC's numbers, per-RPC counts and latency, cluster members and gossip, process memory)
 *   GET /healthz  200 while the process serves (liveness)
 *   GET /readyz   200 once serving, 503 while shutting down (readiness); a replicated member is ready
 *                 only while it knows a leader and has applied up to the commit index it learned
 */

import { formatAddress } from "../address.ts";
import { describeError, HomeKvError } from "../errors.ts";
import type { FlsmEngineStats } from "../storage/flsm/disk-engine.ts";
import {
  clusterFamilies,
  flsmFamilies,
  formatExposition,
  PROMETHEUS_CONTENT_TYPE,
  processFamilies,
  raftFamilies,
  rpcFamilies,
  storeFamilies,
} from "./prometheus.ts";
import type { HomeKvServer } from "./server.ts";

export interface HttpEndpoint {
  readonly port: number;
  /** `host:port`, bracketed for IPv6. */
  readonly address: string;
  stop(): Promise<void>;
}

export type HttpEndpointSource = Pick<HomeKvServer, "metrics" | "rpcStats" | "serving" | "membership"> & {
  readonly db: { stats(): { readonly flsm?: FlsmEngineStats } };
};

/** The /metrics body for `server`. */
export function metricsExposition(server: HttpEndpointSource): string {
  const memory = process.memoryUsage();
  const metrics = server.metrics();
  return formatExposition([
    ...storeFamilies(metrics),
    ...raftFamilies(metrics),
    ...flsmFamilies(server.db.stats().flsm),
    ...rpcFamilies(server.rpcStats),
    ...clusterFamilies(server.membership.members(), server.membership.counters?.()),
    ...processFamilies({ rss: memory.rss, heapUsed: memory.heapUsed, heapTotal: memory.heapTotal }),
  ]);
}

export function handleHttp(request: Request, server: HttpEndpointSource): Response {
  const { pathname } = new URL(request.url);
  if (request.method !== "GET" && request.method !== "HEAD")
    return new Response("method not allowed\n", { status: 405, headers: { allow: "GET, HEAD" } });
  switch (pathname) {
    case "/metrics":
      return new Response(metricsExposition(server), { headers: { "content-type": PROMETHEUS_CONTENT_TYPE } });
    case "/healthz":
      return new Response("ok\n");
    case "/readyz": {
      const reason = notReady(server);
      return reason === undefined ? new Response("ready\n") : new Response(`${reason}\n`, { status: 503 });
    }
    default:
      return new Response("not found\n", { status: 404 });
  }
}

/** Why `server` should get no traffic now; undefined when it is ready. */
function notReady(server: HttpEndpointSource): string | undefined {
  if (!server.serving) return "shutting down";
  const metrics = server.metrics();
  if (!metrics.replicated) return undefined;
  if (metrics.raftLeader === "") return "no leader known (an election, or not a member yet)";
  if (metrics.raftAppliedIndex < metrics.raftCommitIndex)
    return `catching up: applied ${metrics.raftAppliedIndex} of ${metrics.raftCommitIndex}`;
  return undefined;
}

export function startHttpEndpoint(server: HttpEndpointSource, host: string, port: number): HttpEndpoint {
  let http: ReturnType<typeof Bun.serve>;
  try {
    http = Bun.serve({ hostname: host, port, fetch: (request) => handleHttp(request, server) });
  } catch (error) {
    const reason = describeError(error);
    throw new HomeKvError(
      "E_LISTEN",
      `cannot listen for HTTP on ${formatAddress(host, port)}: ${/EADDRINUSE|in use/i.test(reason) ? "address already in use" : reason}`,
    );
  }
  const bound = http.port ?? port;
  return {
    port: bound,
    address: formatAddress(host, bound),
    stop: () => http.stop(true),
  };
}

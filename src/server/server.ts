import { hostname } from "node:os";
import { logVerbosity, setLogger, setLogVerbosity } from "@grpc/grpc-js";
import { DEFAULT_HOST, DEFAULT_PORT, formatAddress } from "../address.ts";
import type { Metrics } from "../gen/homekv_service.ts";
import { createDatabase, type Database } from "../storage/database.ts";
import type { AuthTokens } from "./auth.ts";
import { type ClusterControl, soloClusterControl } from "./cluster-control.ts";
import { discoveryServices } from "./discovery.ts";
import { startGrpcJsTransport } from "./grpc-js-transport.ts";
import { startNativeTransport } from "./h2/native-transport.ts";
import { DEFAULT_LIMITS, type Limits } from "./limits.ts";
import { type MembershipView, membersResponse, soloView } from "./members.ts";
import { type RingView, ringResponse } from "./ring.ts";
import { createRpcStats, type RpcStats } from "./rpc-stats.ts";
import type { Scans } from "./scan-cursors.ts";
import { createService, metrics, type ServiceContext } from "./service.ts";
import type { ServerTls } from "./tls.ts";
import { DEFAULT_GRPC_SERVER, type GrpcServerKind } from "./transport.ts";
import { WatchSendBudget } from "./watch-send-budget.ts";
import { serveWatch } from "./watch-stream.ts";

export interface ServerOptions {
  host?: string;
  /** 0 picks a free port; `HomeKvServer.port` tells which. */
  port?: number;
  limits?: Partial<Limits>;
  /** The store to serve; a fresh in-memory one by default. The server closes it on shutdown. */
  db?: Database;
  onBug?: (error: unknown) => void;
  /** Serve over TLS (mutual TLS when `clientCa` is set); plaintext by default. */
  tls?: ServerTls;
  /** Require a bearer token on every HomeKV call (health and reflection stay open); none by default. */
  auth?: AuthTokens;
  /** A connection with no call for this long is closed (GOAWAY), half-open ones included. */
  connectionIdleTimeoutMs?: number;
  /** This node's name in a cluster (default: the host name) and the cluster's (default "homekv"). */
  nodeId?: string;
  clusterId?: string;
  /** The replicated group behind the cluster RPCs; a server of one by default. */
  cluster?: ClusterControl;
  /** The partitions of a partitioned cluster, as this node sees them (the Ring RPC); none by default. */
  ring?: () => RingView;
  /** Scan pages read elsewhere than the database's own cursors (a partitioned node). */
  scans?: Scans;
  /** Which gRPC server transport serves the calls: HomeKV's own HTTP/2 server, or grpc-js's. */
  grpcServer?: GrpcServerKind;
}

export interface HomeKvServer {
  readonly host: string;
  readonly port: number;
  /** `host:port`, bracketed for IPv6. */
  readonly address: string;
  readonly db: Database;
  /** What the Metrics RPC answers, now. */
  metrics(): Metrics;
  /** Calls by method and status, and their latency (all methods). */
  readonly rpcStats: RpcStats;
  /** True once bound, false from the start of `shutdown()`. */
  readonly serving: boolean;
  /** Who is in the cluster (the Members RPC, /metrics). */
  readonly membership: MembershipView;
  /** What the Members RPC answers from: gossip, once started (it needs the bound address); a cluster of one before. */
  attachMembership(view: MembershipView): void;
  /** Stops accepting calls, lets the calls in flight finish, then closes the store. */
  shutdown(): Promise<void>;
}

export const DEFAULT_CLUSTER_ID = "homekv";
/** Like etcd's and most load balancers' defaults: minutes, so that a client between bursts keeps its connection. */
export const DEFAULT_CONNECTION_IDLE_TIMEOUT_MS = 5 * 60_000;
const KEEPALIVE_INTERVAL_MS = 2 * 60_000;
/** A watch message not taken this long while other streams wait for room: its client is not reading. */
const WATCH_STUCK_MS = 250;
const KEEPALIVE_TIMEOUT_MS = 20_000;

export async function startServer(options: ServerOptions = {}): Promise<HomeKvServer> {
  const host = options.host ?? DEFAULT_HOST;
  const limits: Limits = { ...DEFAULT_LIMITS, ...options.limits };
  const onBug = options.onBug ?? ((error: unknown) => console.error(error));
  const watchBudget = new WatchSendBudget(limits.watchBufferBytesMax, WATCH_STUCK_MS);
  const watchSweep = setInterval(() => watchBudget.sweep(), WATCH_STUCK_MS / 2);
  watchSweep.unref();
  const db = options.db ?? createDatabase({ watch: { onBug } });
  const rpcStats = createRpcStats();
  let membership: MembershipView | undefined;
  let boundAddress = "";
  const self = { clusterId: options.clusterId ?? DEFAULT_CLUSTER_ID, nodeId: options.nodeId ?? hostname() };
  const { ring } = options;
  const serviceContext: ServiceContext = {
    db,
    limits,
    rpcStats,
    startedAtMs: performance.now(),
    now: () => performance.now(),
    wallNow: () => Date.now(),
    onBug,
    watch: (request, call, sink) => serveWatch(request, call, sink, db.watches, limits, watchBudget, onBug),
    watchers: () => db.watches.size,
    members: () => membersResponse(membership!, performance.now()),
    cluster: options.cluster ?? soloClusterControl({ ...self, grpcAddress: () => boundAddress }, () => db.revision),
    ...(ring ? { ring: () => ringResponse(ring(), self) } : {}),
    ...(options.scans ? { scans: options.scans } : {}),
  };
  const service = createService(serviceContext);
  // Health (NOT_SERVING until bound) and reflection; src/server/discovery.ts.
  const discovery = discoveryServices();
  const startTransport =
    (options.grpcServer ?? DEFAULT_GRPC_SERVER) === "native" ? startNativeTransport : startGrpcJsTransport;
  const transport = await startTransport({
    host,
    port: options.port ?? DEFAULT_PORT,
    services: [service, ...discovery.services],
    limits,
    rpcStats,
    auth: options.auth,
    tls: options.tls,
    connectionIdleTimeoutMs: options.connectionIdleTimeoutMs ?? DEFAULT_CONNECTION_IDLE_TIMEOUT_MS,
    keepaliveIntervalMs: KEEPALIVE_INTERVAL_MS,
    keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
    onBug,
  });
  const { port } = transport;
  boundAddress = formatAddress(host, port);
  membership = soloView(self.clusterId, self.nodeId, boundAddress, Date.now());
  let serving = true;
  discovery.setStatus("SERVING");
  return {
    host,
    port,
    address: formatAddress(host, port),
    db,
    metrics: () => metrics(serviceContext),
    rpcStats,
    get serving() {
      return serving;
    },
    get membership() {
      return membership!;
    },
    attachMembership(view) {
      membership = view;
    },
    async shutdown() {
      serving = false;
      discovery.setStatus("NOT_SERVING");
      discovery.close();
      service.close();
      // Watch streams never end by themselves: end them (UNAVAILABLE, with where to resume) so that the calls finish.
      db.watches.close();
      clearInterval(watchSweep);
      await transport.shutdown();
      await db.close();
    },
  };
}

/**
 * grpc-js logs some failures itself (a failed bind, for one) straight to the console; the server
 * reports those as errors of its own, so grpc-js's lines go to the given sink instead (its errors only).
 */
export function routeGrpcLogs(sink: (line: string) => void): void {
  const write = (...parts: unknown[]) => sink(parts.map(String).join(" "));
  setLogger({ error: write, info: write, debug: write });
  setLogVerbosity(logVerbosity.ERROR);
}

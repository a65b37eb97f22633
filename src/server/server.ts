import { hostname } from "node:os";
import { logVerbosity, Server, setLogger, setLogVerbosity } from "@grpc/grpc-js";
import { DEFAULT_HOST, DEFAULT_PORT, formatAddress } from "../address.ts";
import { HomeKvError } from "../errors.ts";
import type { Metrics } from "../gen/homekv_service.ts";
import { HomeKvServiceService } from "../gen/homekv_service.ts";
import { createDatabase, type Database } from "../storage/database.ts";
import { type AuthTokens, authInterceptor } from "./auth.ts";
import { type ClusterControl, soloClusterControl } from "./cluster-control.ts";
import { addDiscoveryServices } from "./discovery.ts";
import { widenReceiveWindows } from "./flow-control.ts";
import { DEFAULT_LIMITS, type Limits } from "./limits.ts";
import { type MembershipView, membersResponse, soloView } from "./members.ts";
import { hardCapBytes, withRequestSizeCheck } from "./request-size.ts";
import { createRpcStats, type RpcStats, rpcStatsInterceptor } from "./rpc-stats.ts";
import { createService, metrics, type ServiceContext } from "./service.ts";
import { type ServerTls, serverCredentials } from "./tls.ts";
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
  const server = new Server({
    "grpc.max_receive_message_length": hardCapBytes(limits),
    // No channelz: nothing here reads it, and it would track every call.
    "grpc.enable_channelz": 0,
    // HTTP/2 memory per connection, in MB (Node's default, 10, refuses streams with
    // ENHANCE_YOUR_CALM long before a few large requests within the limits are in flight).
    "grpc-node.max_session_memory": Math.ceil((4 * hardCapBytes(limits)) / (1024 * 1024)),
    // Without these a connection is held for as long as its client likes, idle or half-open, each a
    // file descriptor and buffers: enough of them starve the server (test/hardening/connections).
    "grpc.max_connection_idle_ms": options.connectionIdleTimeoutMs ?? DEFAULT_CONNECTION_IDLE_TIMEOUT_MS,
    // A client that stops answering pings (gone, or not reading) is dropped with what was queued for it.
    "grpc.keepalive_time_ms": KEEPALIVE_INTERVAL_MS,
    "grpc.keepalive_timeout_ms": KEEPALIVE_TIMEOUT_MS,
    // The last interceptor is the outermost: auth refusals pass through the stats.
    interceptors: [rpcStatsInterceptor(rpcStats), ...(options.auth ? [authInterceptor(options.auth)] : [])],
  });
  let membership: MembershipView | undefined;
  let boundAddress = "";
  const serviceContext: ServiceContext = {
    db,
    limits,
    rpcStats,
    startedAtMs: performance.now(),
    now: () => performance.now(),
    wallNow: () => Date.now(),
    onBug,
    watch: (call) => serveWatch(call, db.watches, limits, watchBudget, onBug),
    watchers: () => db.watches.size,
    members: () => membersResponse(membership!, performance.now()),
    cluster:
      options.cluster ??
      soloClusterControl(
        {
          clusterId: options.clusterId ?? DEFAULT_CLUSTER_ID,
          nodeId: options.nodeId ?? hostname(),
          grpcAddress: () => boundAddress,
        },
        () => db.revision,
      ),
  };
  const service = createService(serviceContext);
  server.addService(withRequestSizeCheck(HomeKvServiceService, limits), service);
  // Health (NOT_SERVING until bound) and reflection; src/server/discovery.ts.
  const discovery = addDiscoveryServices(server);
  const port = await bind(server, formatAddress(host, options.port ?? DEFAULT_PORT), options.tls);
  widenReceiveWindows(server);
  boundAddress = formatAddress(host, port);
  membership = soloView(
    options.clusterId ?? DEFAULT_CLUSTER_ID,
    options.nodeId ?? hostname(),
    formatAddress(host, port),
    Date.now(),
  );
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
      await new Promise<void>((resolve) => server.tryShutdown(() => resolve()));
      await db.close();
    },
  };
}

function bind(server: Server, address: string, tls: ServerTls | undefined): Promise<number> {
  return new Promise((resolve, reject) => {
    server.bindAsync(address, serverCredentials(tls), (error, port) => {
      if (error) reject(new HomeKvError("E_LISTEN", `cannot listen on ${address}: ${bindReason(error)}`));
      else resolve(port);
    });
  });
}

/** grpc-js wraps the socket error in a sentence of its own; keep the part a person can act on. */
function bindReason(error: Error): string {
  const inner = /errors: \[(.*)\]$/.exec(error.message)?.[1] ?? error.message;
  if (inner.includes("EADDRINUSE")) return "address already in use";
  if (inner.includes("EADDRNOTAVAIL")) return "address not available on this machine";
  if (inner.includes("EACCES")) return "permission denied";
  return inner;
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

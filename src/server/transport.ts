import type { AuthTokens } from "./auth.ts";
import type { RpcService } from "./call.ts";
import type { Limits } from "./limits.ts";
import type { RpcStats } from "./rpc-stats.ts";
import type { ServerTls } from "./tls.ts";

/** The gRPC server transports: HomeKV's own HTTP/2 server (src/server/h2), or grpc-js's. */
export const GRPC_SERVERS = ["native", "grpc-js"] as const;
export type GrpcServerKind = (typeof GRPC_SERVERS)[number];
/** The native server: its CPU per call is a fraction of grpc-js's (docs/performance.md); grpc-js stays for comparison and fallback. */
export const DEFAULT_GRPC_SERVER: GrpcServerKind = "native";

/** What a transport serves, and how. */
export interface TransportOptions {
  host: string;
  /** 0: any free one. */
  port: number;
  services: readonly RpcService[];
  limits: Limits;
  rpcStats: RpcStats;
  /** Bearer tokens every HomeKV call needs (health and reflection stay open); none when undefined. */
  auth: AuthTokens | undefined;
  tls: ServerTls | undefined;
  connectionIdleTimeoutMs: number;
  keepaliveIntervalMs: number;
  keepaliveTimeoutMs: number;
  onBug: (error: unknown) => void;
}

export interface Transport {
  readonly port: number;
  /** Stops taking calls, lets those in flight finish, then closes every connection. */
  shutdown(): Promise<void>;
}

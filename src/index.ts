// The public surface of the `homekv` package for TypeScript users.
export { DEFAULT_HOST, DEFAULT_PORT } from "./address.ts";
export {
  type ClientOptions,
  type DelResult,
  type GetResult,
  HomeKvClient,
  HomeKvRpcError,
  type KeyRecord,
  type ScanOptions,
  type ScanPage,
  type ValueInput,
  type WatchEvent,
  type WatchOptions,
  type WriteOptions,
  type WriteResult,
} from "./client/client.ts";
export { type ErrorCode, HomeKvError } from "./errors.ts";
export type { Metrics } from "./gen/homekv_service.ts";
export { DEFAULT_LIMITS, type Limits } from "./server/limits.ts";
export { type HomeKvServer, type ServerOptions, startServer } from "./server/server.ts";

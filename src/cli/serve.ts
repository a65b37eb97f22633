import { defineCommand } from "citty";
import { resolve } from "node:path";
import type { Database } from "../storage/database.ts";
import { createDatabase } from "../storage/database.ts";
import { DURABLE_DEFAULTS, openDurableDatabase } from "../storage/durable-database.ts";
import { createWatchHub } from "../storage/watch/watch-hub.ts";
import { startHistoryCompactor } from "../storage/history-compactor.ts";
import { FSYNC_MODES, type FsyncMode } from "../storage/wal/wal-writer.ts";
import { DEFAULT_LIMITS, LIMIT_FLAGS, type Limits } from "../server/limits.ts";
import { DEFAULT_HOST, DEFAULT_PORT, routeGrpcLogs, startServer } from "../server/server.ts";
import { VERSION } from "../version.ts";
import { configureLogger, LOG_FORMATS, LOG_LEVELS, logger } from "./logger.ts";
import { startHttpEndpoint } from "../server/http-endpoint.ts";
import { parseDuration } from "./duration.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

const SHUTDOWN_GRACE_MS = 10_000;
export const DEFAULT_DATA_DIR = "./homekv-data";
const HISTORY_REVISIONS_DEFAULT = 10_000;
const INT_MAX = 2 ** 31 - 1;

const limitNames = Object.keys(LIMIT_FLAGS) as (keyof Limits)[];
const limitArgs = Object.fromEntries(
  limitNames.map((name) => [LIMIT_FLAGS[name].slice(2), { type: "string", description: `Limit (default ${DEFAULT_LIMITS[name]})` }]),
) as Record<string, { type: "string"; description: string }>;

export const serveCommand = defineCommand({
  meta: { name: "serve", description: "Run a HomeKV server until SIGINT or SIGTERM" },
  args: {
    host: { type: "string", description: `Address to listen on (default ${DEFAULT_HOST})` },
    port: { type: "string", alias: "p", description: `Port to listen on, 0 for any free one (default ${DEFAULT_PORT})` },
    "data-dir": { type: "string", description: `Where the data lives (default ${DEFAULT_DATA_DIR})` },
    "in-memory": { type: "boolean", description: "Keep nothing on disk: all data is lost when the server stops" },
    fsync: { type: "string", description: "When a write is acknowledged: always (after fsync) | everysec | never (default always)" },
    "history-revisions": {
      type: "string",
      description: `Past revisions kept readable (reads, watches and scans at a revision; default ${HISTORY_REVISIONS_DEFAULT})`,
    },
    "history-duration": { type: "string", description: "Also keep what changed in the last this long, e.g. 5m (default: off)" },
    "log-format": { type: "string", description: "human (default) | json: one JSON object per line" },
    "log-level": { type: "string", description: "debug | info (default) | warn | error" },
    "wal-segment-bytes": { type: "string", description: `WAL segment file size (default ${DURABLE_DEFAULTS.walSegmentBytesMax})` },
    "checkpoint-wal-bytes": {
      type: "string",
      description: `Checkpoint after this many WAL bytes (default ${DURABLE_DEFAULTS.checkpointWalBytes})`,
    },
    "http-port": { type: "string", description: "Also serve /metrics, /healthz and /readyz over HTTP on this port, 0 for any free one (default: off)" },
    ...limitArgs,
  },
  async run({ args }) {
    const limits = Object.fromEntries(
      limitNames.map((name) => {
        const flag = LIMIT_FLAGS[name];
        return [name, parseIntegerFlag(flag, args[flag.slice(2)] as string | undefined, DEFAULT_LIMITS[name], 1, INT_MAX)];
      }),
    ) as unknown as Limits;
    const port = parseIntegerFlag("--port", args.port, DEFAULT_PORT, 0, 65_535);
    const logFormat = oneOf("--log-format", args["log-format"], LOG_FORMATS, "human");
    configureLogger(logFormat, oneOf("--log-level", args["log-level"], LOG_LEVELS, "info"));
    const httpPort = args["http-port"] === undefined ? undefined : parseIntegerFlag("--http-port", args["http-port"] || "(none)", 0, 0, 65_535);
    const fsync: FsyncMode = oneOf("--fsync", args.fsync, FSYNC_MODES, DURABLE_DEFAULTS.fsync);
    if (args["in-memory"] && args["data-dir"] !== undefined) throw new UsageError("--in-memory and --data-dir exclude each other");
    const dataDir = resolve(args["data-dir"] || DEFAULT_DATA_DIR);
    const historyDurationMs = args["history-duration"] === undefined ? undefined : parseDuration("--history-duration", args["history-duration"]);
    // Given alone, a duration decides by itself; given both, whichever keeps less history wins.
    const historyRevisions = parseIntegerFlag(
      "--history-revisions",
      args["history-revisions"],
      historyDurationMs === undefined ? HISTORY_REVISIONS_DEFAULT : Infinity,
      0,
      Number.MAX_SAFE_INTEGER,
    );

    // Made before the database, whose store tells it every change (while recovering too).
    const watchHub = createWatchHub({ onBug: (error) => logger.error("internal error in a watcher:", error) });
    const db: Database = args["in-memory"]
      ? createDatabase({ historyRevisions, onEvents: watchHub.publish })
      : await openDurableDatabase({
          dir: dataDir,
          fsync,
          historyRevisions,
          onEvents: watchHub.publish,
          walSegmentBytesMax: parseIntegerFlag("--wal-segment-bytes", args["wal-segment-bytes"], DURABLE_DEFAULTS.walSegmentBytesMax, 4096, INT_MAX),
          checkpointWalBytes: parseIntegerFlag("--checkpoint-wal-bytes", args["checkpoint-wal-bytes"], DURABLE_DEFAULTS.checkpointWalBytes, 1, Number.MAX_SAFE_INTEGER),
          log: (line) => logger.info(line),
        });
    routeGrpcLogs((line) => logger.debug(line));
    const server = await startServer({
      host: args.host || DEFAULT_HOST,
      port,
      limits,
      db,
      watchHub,
      onBug: (error) => logger.error("internal error while serving a call:", error),
    }).catch(async (error) => {
      await db.close();
      throw error;
    });
    const http = httpPort === undefined ? undefined : await Promise.resolve().then(() => startHttpEndpoint(server, server.host, httpPort)).catch(async (error) => {
      await server.shutdown();
      throw error;
    });
    if (http) logger.info(`HTTP endpoint on http://${http.address} (/metrics, /healthz, /readyz)`);
    const compactor =
      historyDurationMs === undefined
        ? undefined
        : startHistoryCompactor(db, { durationMs: historyDurationMs, onError: (error) => logger.warn(`history compaction failed: ${error}`) });
    const storage = args["in-memory"] ? "in memory only" : `data in ${dataDir}, fsync ${fsync}`;
    logger.info(`HomeKV ${VERSION} listening on ${server.address} (${storage})`);

    await new Promise<void>((done) => {
      const stop = (signal: string) => {
        compactor?.stop();
        logger.info(`${signal}: finishing calls in flight, then stopping`);
        // A second signal means "now": the process ends without waiting for the calls.
        process.once("SIGINT", () => process.exit(130));
        process.once("SIGTERM", () => process.exit(143));
        const grace = setTimeout(() => {
          logger.warn(`calls still in flight after ${SHUTDOWN_GRACE_MS} ms; stopping anyway`);
          done();
        }, SHUTDOWN_GRACE_MS);
        server
          .shutdown()
          .catch((error) => logger.error(`while stopping: ${error instanceof Error ? error.message : error}`))
          .finally(() => {
            clearTimeout(grace);
            done();
          });
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
    });
    await http?.stop();
    logger.info("HomeKV stopped");
  },
});

function oneOf<T extends string>(flag: string, raw: string | undefined, allowed: readonly T[], fallback: T): T {
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new UsageError(`${flag} must be one of ${allowed.join(", ")}, not ${JSON.stringify(raw)}`);
  return raw as T;
}

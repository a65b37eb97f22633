import { readFileSync } from "node:fs";
import { hostname } from "node:os";
import { resolve } from "node:path";
import { type ArgDef, defineCommand } from "citty";
import { DEFAULT_HOST, isLoopback } from "../address.ts";
import { ID_PATTERN } from "../cluster/gossip/node-state.ts";
import { startMembership } from "../cluster/membership.ts";
import { HomeKvError } from "../errors.ts";
import { type AuthTokens, mergeTokens, parseAuthFile, parseInlineTokens } from "../server/auth.ts";
import { startHttpEndpoint } from "../server/http-endpoint.ts";
import type { Limits } from "../server/limits.ts";
import { routeGrpcLogs, startServer } from "../server/server.ts";
import { loadServerTls, type ServerTls } from "../server/tls.ts";
import type { Database } from "../storage/database.ts";
import { createDatabase } from "../storage/database.ts";
import { openDurableDatabase } from "../storage/durable-database.ts";
import { startHistoryCompactor } from "../storage/history-compactor.ts";
import type { FsyncMode } from "../storage/wal/wal-writer.ts";
import { createWatchHub } from "../storage/watch/watch-hub.ts";
import { VERSION } from "../version.ts";
import { configureLogger, type LogFormat, type LogLevelName, logger } from "./logger.ts";
import { DEFAULT_DATA_DIR, HISTORY_REVISIONS_DEFAULT, LIMIT_SETTINGS, SERVE_SETTINGS } from "./serve-settings.ts";
import { envName, formatSettings, resolveSettings, type SettingSpec, type SettingValues } from "./settings.ts";
import { UsageError } from "./usage-error.ts";

const SHUTDOWN_GRACE_MS = 10_000;

/** Each setting as a flag; a choice is an enum, so that --help lists the values and citty refuses others. */
const settingArgs: Record<string, ArgDef> = Object.fromEntries(
  Object.entries(SERVE_SETTINGS).map(([name, spec]: [string, SettingSpec]) => [
    name,
    {
      ...(spec.kind.type === "choice"
        ? { type: "enum", options: [...spec.kind.choices] }
        : { type: spec.kind.type === "boolean" ? "boolean" : "string" }),
      description: `${spec.description}${defaultText(spec)} [${envName(name)}]`,
      ...(spec.alias ? { alias: spec.alias } : {}),
    },
  ]),
);

function defaultText(spec: SettingSpec): string {
  if (spec.default === undefined || spec.kind.type === "boolean") return "";
  return ` (default ${spec.default}${spec.kind.type === "duration" ? "ms" : ""})`;
}

export const serveCommand = defineCommand({
  meta: { name: "serve", description: "Run a HomeKV server until SIGINT or SIGTERM" },
  args: {
    config: { type: "string", description: "TOML file of settings (keys as the flags, without --) [HOMEKV_CONFIG]" },
    "print-config": { type: "boolean", description: "Print the resolved settings and where each came from, then exit" },
    ...settingArgs,
  },
  async run({ args }) {
    const configPath = args.config || process.env.HOMEKV_CONFIG || undefined;
    const file = configPath === undefined ? undefined : { path: configPath, text: readConfig(configPath) };
    const resolved = resolveSettings(SERVE_SETTINGS, { flags: args, env: process.env, ...(file ? { file } : {}) });
    if (args["print-config"]) {
      process.stdout.write(`${formatSettings(SERVE_SETTINGS, resolved)}\n`);
      return;
    }
    const settings = resolved.values;
    const limits = Object.fromEntries(
      [...LIMIT_SETTINGS].map(([setting, name]) => [name, (settings as Record<string, unknown>)[setting] as number]),
    ) as unknown as Limits;
    configureLogger(settings["log-format"] as LogFormat, settings["log-level"] as LogLevelName);
    const inMemory = settings["in-memory"] === true && !outranks(resolved.sources, "data-dir", "in-memory");
    const dataDir = resolve(settings["data-dir"] ?? DEFAULT_DATA_DIR);
    const historyDurationMs = settings["history-duration"];
    // Given alone, a duration decides by itself; given both, whichever keeps less history wins.
    const historyRevisions =
      settings["history-revisions"] ?? (historyDurationMs === undefined ? HISTORY_REVISIONS_DEFAULT : Infinity);
    const tls = serverTls(settings["tls-cert"], settings["tls-key"], settings["tls-client-ca"]);
    const auth = authTokens(settings["auth-file"], settings["auth-tokens"], resolved.sources["auth-tokens"]);
    const host = settings.host ?? DEFAULT_HOST;
    const cluster = clusterSettings(settings);
    const fsync = settings.fsync as FsyncMode;

    // Made before the database, whose store tells it every change (while recovering too).
    const watchHub = createWatchHub({ onBug: (error) => logger.error("internal error in a watcher:", error) });
    const db: Database = inMemory
      ? createDatabase({ historyRevisions, onEvents: watchHub.publish })
      : await openDurableDatabase({
          dir: dataDir,
          fsync,
          historyRevisions,
          onEvents: watchHub.publish,
          walSegmentBytesMax: settings["wal-segment-bytes"]!,
          checkpointWalBytes: settings["checkpoint-wal-bytes"]!,
          log: (line) => logger.info(line),
        });
    routeGrpcLogs((line) => logger.debug(line));
    const server = await startServer({
      host,
      port: settings.port!,
      limits,
      ...(tls ? { tls } : {}),
      ...(auth ? { auth } : {}),
      connectionIdleTimeoutMs: settings["connection-idle-timeout"]!,
      nodeId: cluster.nodeId,
      clusterId: cluster.clusterId,
      db,
      watchHub,
      onBug: (error) => logger.error("internal error while serving a call:", error),
    }).catch(async (error) => {
      await db.close();
      throw error;
    });
    const httpPort = settings["http-port"];
    const http =
      httpPort === undefined
        ? undefined
        : await Promise.resolve()
            .then(() => startHttpEndpoint(server, server.host, httpPort))
            .catch(async (error) => {
              await server.shutdown();
              throw error;
            });
    if (http) logger.info(`HTTP endpoint on http://${http.address} (/metrics, /healthz, /readyz)`);
    const membership =
      cluster.gossipPort === undefined
        ? undefined
        : await startMembership({
            ...cluster,
            gossipPort: cluster.gossipPort,
            host,
            grpcAddress: server.address,
            onChange: (line) => logger.info(line),
          }).catch(async (error) => {
            await Promise.all([server.shutdown(), http?.stop()]);
            throw error;
          });
    if (membership) {
      server.attachMembership(membership);
      const joining = cluster.join.length === 0 ? "as the first node" : `joining through ${cluster.join.join(", ")}`;
      logger.info(
        `node ${cluster.nodeId} of cluster ${cluster.clusterId}: gossip on ${membership.gossipAddress}, ${joining}`,
      );
    }
    const compactor =
      historyDurationMs === undefined
        ? undefined
        : startHistoryCompactor(db, {
            durationMs: historyDurationMs,
            onError: (error) => logger.warn(`history compaction failed: ${error}`),
          });
    const storage = inMemory ? "in memory only" : `data in ${dataDir}, fsync ${fsync}`;
    const security = `${tls ? (tls.clientCa ? "mutual TLS" : "TLS") : "plaintext"}, ${auth ? `${auth.entries.length} token(s)` : "no auth"}`;
    logger.info(`HomeKV ${VERSION} listening on ${server.address} (${storage}; ${security})`);
    if (!tls && !auth && !isLoopback(host)) {
      logger.warn(
        `listening on ${host}, beyond this machine, with neither TLS nor tokens: anyone who can reach it can read and write everything`,
      );
    }

    await new Promise<void>((done) => {
      const stop = (signal: string) => {
        compactor?.stop();
        // First, so that peers see this node as left at once rather than waiting for phi.
        const left = membership?.leave();
        logger.info(`${signal}: finishing calls in flight, then stopping`);
        // A second signal means "now": the process ends without waiting for the calls.
        process.once("SIGINT", () => process.exit(130));
        process.once("SIGTERM", () => process.exit(143));
        const grace = setTimeout(() => {
          logger.warn(`calls still in flight after ${SHUTDOWN_GRACE_MS} ms; stopping anyway`);
          done();
        }, SHUTDOWN_GRACE_MS);
        Promise.all([server.shutdown(), left])
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

/**
 * Whether setting `a` was given at a higher level than `b` (flag > environment > file). For two that
 * exclude each other, like data-dir and in-memory: the higher one wins, and both at one level is an error.
 */
function outranks(sources: Record<string, string>, a: string, b: string): boolean {
  const rank = (source: string) =>
    source.startsWith("--") ? 3 : source.startsWith("HOMEKV_") ? 2 : source === "default" || source === "unset" ? 0 : 1;
  const [rankA, rankB] = [rank(sources[a]!), rank(sources[b]!)];
  if (rankA !== 0 && rankA === rankB)
    throw new UsageError(`${b} (${sources[b]}) and ${a} (${sources[a]}) exclude each other`);
  return rankA > rankB;
}

function clusterSettings(settings: SettingValues<typeof SERVE_SETTINGS>) {
  const nodeId = settings["node-id"] ?? hostname().split(".")[0]!;
  const clusterId = settings["cluster-id"]!;
  for (const [name, id] of [
    ["node-id", nodeId],
    ["cluster-id", clusterId],
  ] as const) {
    if (!ID_PATTERN.test(id))
      throw new UsageError(
        `${name} must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit, not ${JSON.stringify(id)}`,
      );
  }
  const join =
    settings.join === undefined
      ? []
      : settings.join
          .split(",")
          .map((address) => address.trim())
          .filter((address) => address !== "");
  if (settings["gossip-port"] === undefined && join.length > 0)
    throw new UsageError("join needs gossip-port: a node gossips to join");
  return {
    nodeId,
    clusterId,
    gossipPort: settings["gossip-port"],
    join,
    intervalMs: settings["gossip-interval"]!,
    phiThreshold: settings["phi-threshold"]!,
  };
}

function readConfig(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read the config file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}

function serverTls(
  cert: string | undefined,
  key: string | undefined,
  clientCa: string | undefined,
): ServerTls | undefined {
  if (cert === undefined && key === undefined) {
    if (clientCa !== undefined)
      throw new UsageError("tls-client-ca needs tls-cert and tls-key: mutual TLS is TLS first");
    return undefined;
  }
  if (cert === undefined || key === undefined) throw new UsageError("tls-cert and tls-key go together");
  return loadServerTls({ cert, key, clientCa });
}

function authTokens(
  file: string | undefined,
  inline: string | undefined,
  inlineSource: string,
): AuthTokens | undefined {
  const sets = [
    ...(file === undefined ? [] : [parseAuthFile(readAuthFile(file), file)]),
    ...(inline === undefined ? [] : [parseInlineTokens(inline, inlineSource)]),
  ];
  return sets.length === 0 ? undefined : mergeTokens(...sets);
}

function readAuthFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new HomeKvError(
      "E_CONFIG",
      `cannot read the auth file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`,
    );
  }
}

import { readFileSync } from "node:fs";
import { type ArgDef, defineCommand } from "citty";
import { isLoopback } from "../address.ts";
import type { ServeConfig } from "../node/serve-config.ts";
import { type RunningNode, startNode } from "../node/start-node.ts";
import type { StoreEngine } from "../storage/engine.ts";
import { VERSION } from "../version.ts";
import { configureLogger, type LogFormat, type LogLevelName, logger } from "./logger.ts";
import { serveConfig } from "./resolve-serve-config.ts";
import { SERVE_SETTINGS } from "./serve-settings.ts";
import { envName, formatSettings, resolveSettings, type SettingSpec } from "./settings.ts";
import { formatSize } from "./size.ts";
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
  const shown =
    spec.kind.type === "size"
      ? formatSize(spec.default as number)
      : `${spec.default}${spec.kind.type === "duration" ? "ms" : ""}`;
  return ` (default ${shown})`;
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
    // First, so that a mistake in the other settings is logged as asked too.
    configureLogger(resolved.values["log-format"] as LogFormat, resolved.values["log-level"] as LogLevelName);
    const config = serveConfig(resolved);
    const node = await startNode(config, logger);
    // The handlers first: a script that signals as soon as it reads the start line must not find
    // the default action (an exit with 143) still in place.
    const stopped = stopOnSignal(node);
    announce(config, node);
    await stopped;
    logger.info("HomeKV stopped");
  },
});

function announce(config: ServeConfig, node: RunningNode): void {
  if (node.httpAddress) logger.info(`HTTP endpoint on http://${node.httpAddress} (/metrics, /healthz, /readyz)`);
  const { cluster } = config;
  if (cluster.gossip) {
    const { join } = cluster.gossip;
    const joining = join.length === 0 ? "as the first node" : `joining through ${join.join(", ")}`;
    logger.info(`node ${cluster.nodeId} of cluster ${cluster.clusterId}: gossip on ${node.gossipAddress}, ${joining}`);
  }
  const { storage, tls, auth } = config;
  const stored =
    storage.kind === "memory"
      ? "in memory only"
      : `data in ${storage.dir}, ${engineText(storage.engine)}, fsync ${storage.fsync}`;
  const security = `${tls ? (tls.clientCa ? "mutual TLS" : "TLS") : "plaintext"}, ${auth ? `${auth.entries.length} token(s)` : "no auth"}`;
  logger.info(`HomeKV ${VERSION} listening on ${node.address} (${stored}; ${security})`);
  if (!tls && !auth && !isLoopback(config.host)) {
    logger.warn(
      `listening on ${config.host}, beyond this machine, with neither TLS nor tokens: anyone who can reach it can read and write everything`,
    );
  }
}

function engineText(engine: StoreEngine): string {
  if (engine.kind === "memory") return "engine memory";
  return `engine flsm (memtables ${formatSize(engine.memtableBytes!)}, block cache ${formatSize(engine.blockCacheBytes!)}, tables ${engine.compression})`;
}

/**
 * Waits for SIGINT or SIGTERM, then stops the node, giving the calls in flight SHUTDOWN_GRACE_MS to
 * finish. A second signal means "now": the process ends at once, without waiting for them.
 */
function stopOnSignal(node: RunningNode): Promise<void> {
  return new Promise<void>((done) => {
    const stop = (signal: string) => {
      logger.info(`${signal}: finishing calls in flight, then stopping`);
      process.once("SIGINT", () => process.exit(130));
      process.once("SIGTERM", () => process.exit(143));
      const grace = setTimeout(() => {
        logger.warn(`calls still in flight after ${SHUTDOWN_GRACE_MS} ms; stopping anyway`);
        done();
      }, SHUTDOWN_GRACE_MS);
      node
        .stop()
        .catch((error) => logger.error(`while stopping: ${error instanceof Error ? error.message : error}`))
        .finally(() => {
          clearTimeout(grace);
          done();
        });
    };
    process.once("SIGINT", () => stop("SIGINT"));
    process.once("SIGTERM", () => stop("SIGTERM"));
  });
}

function readConfig(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (error) {
    throw new UsageError(`cannot read the config file ${path}: ${(error as NodeJS.ErrnoException).code ?? error}`);
  }
}

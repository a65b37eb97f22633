import { defineCommand } from "citty";
import { DEFAULT_LIMITS, LIMIT_FLAGS, type Limits } from "../server/limits.ts";
import { DEFAULT_HOST, DEFAULT_PORT, routeGrpcLogs, startServer } from "../server/server.ts";
import { VERSION } from "../version.ts";
import { logger } from "./logger.ts";
import { parseIntegerFlag } from "./usage-error.ts";

const SHUTDOWN_GRACE_MS = 10_000;

const limitArgs = Object.fromEntries(
  (Object.keys(LIMIT_FLAGS) as (keyof Limits)[]).map((name) => [
    LIMIT_FLAGS[name].slice(2),
    { type: "string", description: `Limit (default ${DEFAULT_LIMITS[name]})` },
  ]),
) as Record<string, { type: "string"; description: string }>;

export const serveCommand = defineCommand({
  meta: { name: "serve", description: "Run a HomeKV server (in memory) until SIGINT or SIGTERM" },
  args: {
    host: { type: "string", description: `Address to listen on (default ${DEFAULT_HOST})` },
    port: { type: "string", alias: "p", description: `Port to listen on, 0 for any free one (default ${DEFAULT_PORT})` },
    ...limitArgs,
  },
  async run({ args }) {
    const limits = Object.fromEntries(
      (Object.keys(LIMIT_FLAGS) as (keyof Limits)[]).map((name) => {
        const flag = LIMIT_FLAGS[name];
        return [name, parseIntegerFlag(flag, args[flag.slice(2)] as string | undefined, DEFAULT_LIMITS[name], 1, 2 ** 31 - 1)];
      }),
    ) as unknown as Limits;
    const port = parseIntegerFlag("--port", args.port, DEFAULT_PORT, 0, 65_535);
    routeGrpcLogs((line) => logger.debug(line));
    const server = await startServer({
      host: args.host || DEFAULT_HOST,
      port,
      limits,
      onBug: (error) => logger.error("internal error while serving a call:", error),
    });
    logger.info(`HomeKV ${VERSION} listening on ${server.address} (in memory)`);

    await new Promise<void>((resolve) => {
      const stop = (signal: string) => {
        logger.info(`${signal}: finishing calls in flight, then stopping`);
        // A second signal means "now": the process ends without waiting for the calls.
        process.once("SIGINT", () => process.exit(130));
        process.once("SIGTERM", () => process.exit(143));
        const grace = setTimeout(() => {
          logger.warn(`calls still in flight after ${SHUTDOWN_GRACE_MS} ms; stopping anyway`);
          resolve();
        }, SHUTDOWN_GRACE_MS);
        server.shutdown().then(() => {
          clearTimeout(grace);
          resolve();
        });
      };
      process.once("SIGINT", () => stop("SIGINT"));
      process.once("SIGTERM", () => stop("SIGTERM"));
    });
    logger.info("HomeKV stopped");
  },
});

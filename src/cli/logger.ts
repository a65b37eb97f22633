import { createConsola, LogLevels } from "consola";

/**
 * A stream whose writes never throw: a server must not die because whoever read its logs went
 * away (a closed pipe makes process.stdout.write throw EPIPE in Bun).
 */
function forgiving(stream: NodeJS.WriteStream): NodeJS.WriteStream {
  return new Proxy(stream, {
    get(target, property, receiver) {
      if (property !== "write") return Reflect.get(target, property, receiver);
      return (...args: Parameters<NodeJS.WriteStream["write"]>) => {
        try {
          return target.write(...args);
        } catch {
          return false;
        }
      };
    },
  });
}

/**
 * The CLI's logger: consola, with its badges and colours only on a terminal, and plain
 * `[level] message` lines otherwise (log files, pipes, tests), so that one error is one line.
 * The level is fixed at info: consola would otherwise go quiet under NODE_ENV=test or CI, and a
 * server's start line is what scripts and tests wait for.
 */
const options = {
  fancy: Boolean(process.stderr.isTTY),
  level: LogLevels.info,
  formatOptions: { date: false },
  stdout: forgiving(process.stdout),
  stderr: forgiving(process.stderr),
};
export const logger = createConsola(options);

export const LOG_FORMATS = ["human", "json"] as const;
export const LOG_LEVELS = ["debug", "info", "warn", "error"] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];
export type LogLevelName = (typeof LOG_LEVELS)[number];

/**
 * `serve --log-format json`: one JSON object per line ({time, level, message}), for log shippers;
 * errors and warnings on stderr, the rest on stdout, like the human format. `--log-level` drops
 * what is below it (at warn, even the start line).
 */
export function configureLogger(format: LogFormat, level: LogLevelName): void {
  logger.level = LogLevels[level];
  if (format === "human") return;
  logger.setReporters([
    {
      log(entry) {
        const message = entry.args
          .map((arg) => (arg instanceof Error ? (arg.stack ?? arg.message) : String(arg)))
          .join(" ");
        const line = `${JSON.stringify({ time: entry.date.toISOString(), level: entry.type, message })}\n`;
        (entry.level <= LogLevels.warn ? options.stderr : options.stdout).write(line);
      },
    },
  ]);
}

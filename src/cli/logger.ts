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

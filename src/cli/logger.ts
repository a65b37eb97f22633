import { createConsola, LogLevels } from "consola";

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
};
export const logger = createConsola(options);

import { type CommandDef, runCommand, showUsage } from "citty";
import { HomeKvRpcError } from "../client/client.ts";
import { HomeKvError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { logger } from "./logger.ts";
import { mainCommand } from "./main.ts";
import { UsageError } from "./usage-error.ts";

/** Exit codes: 0 done, 1 the operation failed (server refused, unreachable), 2 wrong usage. */
export const EXIT_FAILED = 1;
export const EXIT_USAGE = 2;

/**
 * Runs the CLI and ends the process (the only place that does, with serve's second signal).
 * `--help`/`-h` and `--version` work on every command; an expected error is one line on stderr,
 * never a stack trace.
 */
export async function runCli(rawArgs: string[]): Promise<never> {
  const flags = rawArgs.slice(0, indexOrEnd(rawArgs, "--"));
  const [command, parent] = await findCommand(flags);
  if (flags.includes("--help") || flags.includes("-h")) {
    await showUsage(command, parent);
    process.exit(0);
  }
  if (flags.includes("--version")) {
    console.log(VERSION);
    process.exit(0);
  }
  if (command === mainCommand) {
    // Unknown or missing command: show what exists and fail like any usage error.
    const name = flags.find((arg) => !arg.startsWith("-"));
    await showUsage(mainCommand);
    return fail(EXIT_USAGE, name === undefined ? "no command given" : `unknown command ${JSON.stringify(name)}`);
  }
  try {
    await runCommand(mainCommand, { rawArgs });
    process.exit(0);
  } catch (error) {
    return report(error);
  }
}

async function findCommand(flags: string[]): Promise<[CommandDef, CommandDef | undefined]> {
  const name = flags.find((arg) => !arg.startsWith("-"));
  const subCommands = mainCommand.subCommands as Record<string, CommandDef>;
  const sub = name === undefined ? undefined : subCommands[name];
  return sub === undefined ? [mainCommand, undefined] : [sub, mainCommand];
}

function report(error: unknown): never {
  if (error instanceof UsageError) return fail(EXIT_USAGE, error.message);
  if (error instanceof HomeKvError) return fail(EXIT_FAILED, error.message);
  if (error instanceof HomeKvRpcError) return fail(EXIT_FAILED, `server refused: ${error.message}`);
  if (error instanceof Error && error.name === "CLIError") return fail(EXIT_USAGE, error.message);
  // Not an expected condition: a bug. Show everything there is.
  logger.error(error);
  process.exit(EXIT_FAILED);
}

function fail(code: number, message: string): never {
  logger.error(message);
  process.exit(code);
}

function indexOrEnd(list: string[], item: string): number {
  const at = list.indexOf(item);
  return at < 0 ? list.length : at;
}

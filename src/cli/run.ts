import { stripVTControlCharacters } from "node:util";
import { type CommandDef, runCommand, showUsage } from "citty";
import { HomeKvRpcError } from "../client/client.ts";
import { HomeKvError } from "../errors.ts";
import { VERSION } from "../version.ts";
import { checkFlags } from "./flag-check.ts";
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
    const at = flags.findIndex((arg) => !arg.startsWith("-"));
    await checkCommandFlags(command, flags[at]!, flags.slice(at + 1));
    await runCommand(mainCommand, { rawArgs });
    process.exit(0);
  } catch (error) {
    return report(error);
  }
}

/** Checks a command's flags (flag-check.ts); a group of commands (cluster) by its subcommand's. */
async function checkCommandFlags(command: CommandDef, name: string, tokens: string[]): Promise<void> {
  const subCommands = await resolved(command.subCommands);
  if (subCommands !== undefined) {
    const at = tokens.findIndex((arg) => !arg.startsWith("-"));
    const sub = at < 0 ? undefined : subCommands[tokens[at]!];
    // No subcommand, or an unknown one: citty says so.
    if (sub === undefined) return;
    return checkCommandFlags(await resolved(sub), `${name} ${tokens[at]}`, tokens.slice(at + 1));
  }
  checkFlags(name, tokens, (await resolved(command.args)) ?? {});
}

/** A citty Resolvable: the value, a promise of it, or a function giving either. */
async function resolved<T>(value: T | Promise<T> | (() => T | Promise<T>)): Promise<T> {
  return typeof value === "function" ? await (value as () => T | Promise<T>)() : await value;
}

/** The command the arguments name, loaded (main.ts loads each command only when asked for it). */
async function findCommand(flags: string[]): Promise<[CommandDef, CommandDef | undefined]> {
  const name = flags.find((arg) => !arg.startsWith("-"));
  const loaders = mainCommand.subCommands as Record<string, () => Promise<CommandDef>>;
  if (name === undefined || !Object.hasOwn(loaders, name)) return [mainCommand, undefined];
  return [await loaders[name]!(), mainCommand];
}

function report(error: unknown): Promise<never> {
  if (error instanceof UsageError) return fail(EXIT_USAGE, error.message);
  if (error instanceof HomeKvError) return fail(EXIT_FAILED, error.message);
  // An unknown outcome is not a refusal: nobody said what became of the write.
  if (error instanceof HomeKvRpcError)
    return fail(EXIT_FAILED, error.outcomeUnknown ? error.message : `server refused: ${error.message}`);
  // citty colours the value in its messages; one plain line is what a log or a script wants.
  if (error instanceof Error && error.name === "CLIError")
    return fail(EXIT_USAGE, stripVTControlCharacters(error.message));
  // Not an expected condition: a bug. Show everything there is.
  return fail(EXIT_FAILED, error);
}

async function fail(code: number, message: unknown): Promise<never> {
  // Loaded only here and by serve: a client call that succeeds never pays for the logger.
  const { logger } = await import("./logger.ts");
  logger.error(message);
  process.exit(code);
}

function indexOrEnd(list: string[], item: string): number {
  const at = list.indexOf(item);
  return at < 0 ? list.length : at;
}

import { defineCommand } from "citty";
import type { WatchEvent, WatchOptions } from "../client/client.ts";
import { HomeKvError } from "../errors.ts";
import { connectionArgs, withClient } from "./connection.ts";
import { jsonValue, showValue } from "./format.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

export const watchCommand = defineCommand({
  meta: {
    name: "watch",
    description: "Print changes to a key, a prefix or a range [--from, --to) as they commit, until Ctrl-C",
  },
  args: {
    ...connectionArgs,
    key: { type: "positional", description: "Key to watch", required: false },
    prefix: { type: "string", description: "Watch the keys that start with this" },
    from: { type: "string", description: "First key of the range (inclusive)" },
    to: { type: "string", description: "End of the range (exclusive)" },
    rev: {
      type: "string",
      description: "Start at this revision, replaying the changes since (default: the next commit)",
    },
    prev: { type: "boolean", description: "Also show each key's previous value" },
  },
  async run({ args }) {
    const options = watchTarget(args._, args);
    options.startRevision = parseIntegerFlag("--rev", args.rev, 0, 1, Number.MAX_SAFE_INTEGER);
    options.prevValue = args.prev === true;
    const json = args.json === true;
    const stop = new AbortController();
    const onSignal = () => stop.abort();
    process.once("SIGINT", onSignal);
    process.once("SIGTERM", onSignal);
    try {
      await withClient(args, async (client) => {
        for await (const event of client.watch(options, stop.signal)) {
          console.log(
            json ? JSON.stringify(eventJson(event, options.prevValue!)) : eventLine(event, options.prevValue!),
          );
        }
      });
    } finally {
      process.off("SIGINT", onSignal);
      process.off("SIGTERM", onSignal);
    }
    // Ctrl-C ends the watch quietly; the server ending it without an error is still the end of the watch.
    if (!stop.signal.aborted) throw new HomeKvError("E_UNAVAILABLE", "the server ended the watch");
  },
});

function watchTarget(positionals: string[], flags: { prefix?: string; from?: string; to?: string }): WatchOptions {
  if (positionals.length > 1) throw new UsageError("watch takes one key (or --prefix, or --from/--to)");
  const key = positionals[0];
  const ranged = flags.from !== undefined || flags.to !== undefined;
  const given = [key !== undefined, flags.prefix !== undefined, ranged].filter(Boolean).length;
  if (given === 0) throw new UsageError("watch needs a key, --prefix or --from/--to: homekv watch KEY");
  if (given > 1) throw new UsageError("give one of a key, --prefix or --from/--to, not several");
  if (key !== undefined) return { key };
  if (flags.prefix !== undefined) {
    if (flags.prefix === "")
      throw new UsageError("--prefix must not be empty (watch every key with --from '' instead)");
    return { prefix: flags.prefix };
  }
  // No key is empty, so "\0" is at or before every key: `--from ''` watches from the first key.
  return { start: flags.from || "\0", end: flags.to ?? "" };
}

/** `PUT key "value" (revision N)`, `DELETE key (revision N)`; with --prev, `, previous "old"` in the brackets. */
export function eventLine(event: WatchEvent, withPrevious: boolean): string {
  const previous = withPrevious ? `, previous ${showValue(event.prevValue)}` : "";
  return event.type === "put"
    ? `PUT ${event.key} ${showValue(event.value)} (revision ${event.revision}${previous})`
    : `DELETE ${event.key} (revision ${event.revision}${previous})`;
}

/** One JSON object per line: type, key, value (or value_base64), revision, and prev_value with --prev. */
export function eventJson(event: WatchEvent, withPrevious: boolean): Record<string, unknown> {
  const previous = jsonValue(event.prevValue);
  return {
    type: event.type,
    key: event.key,
    ...jsonValue(event.value),
    revision: event.revision,
    ...(withPrevious
      ? "value" in previous
        ? { prev_value: previous.value }
        : { prev_value_base64: previous.value_base64 }
      : {}),
  };
}

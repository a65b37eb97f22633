import { defineCommand } from "citty";
import { TTL_MS_MAX } from "../ttl.ts";
import { conditionalSet } from "./conditional-set.ts";
import { connectionArgs, requestIdArg, requestIdOption, withClient } from "./connection.ts";
import { parseDuration } from "./duration.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

/** `KEY=VALUE`, split at the first `=` so that values may contain `=`. */
export function parsePair(arg: string): [string, string] {
  const at = arg.indexOf("=");
  if (at < 0) throw new UsageError(`expected KEY=VALUE, got ${JSON.stringify(arg)} (no "=")`);
  if (at === 0) throw new UsageError(`expected KEY=VALUE, got ${JSON.stringify(arg)} (empty key)`);
  return [arg.slice(0, at), arg.slice(at + 1)];
}

export const setCommand = defineCommand({
  meta: { name: "set", description: "Write KEY=VALUE pairs atomically, as one commit" },
  args: {
    ...connectionArgs,
    ...requestIdArg,
    pairs: { type: "positional", description: "KEY=VALUE pairs (split at the first =)", required: false },
    "if-revision": {
      type: "string",
      description: "Write only if every key is still at this mod revision (compare-and-set)",
    },
    "if-absent": { type: "boolean", description: "Write only if no key exists yet" },
    ttl: { type: "string", description: "Delete every pair after this long, e.g. 500ms, 30s, 5m, 2h (at most a year)" },
  },
  async run({ args }) {
    if (args._.length === 0) throw new UsageError("set needs at least one pair: homekv set KEY=VALUE...");
    const pairs = args._.map(parsePair);
    if (args["if-absent"] && args["if-revision"] !== undefined)
      throw new UsageError("--if-absent and --if-revision exclude each other");
    const ifRevision =
      args["if-revision"] === undefined
        ? undefined
        : parseIntegerFlag("--if-revision", args["if-revision"], 0, 0, Number.MAX_SAFE_INTEGER);
    const conditional = ifRevision !== undefined || args["if-absent"];
    const ttlMs = args.ttl === undefined ? undefined : parseTtl(args.ttl);
    if (ttlMs !== undefined && conditional)
      throw new UsageError("--ttl cannot be combined with --if-revision or --if-absent yet");
    const writeOptions = requestIdOption(args["request-id"]);
    const { revision } = await withClient(args, (client) =>
      conditional
        ? conditionalSet(client, pairs, { ifRevision, ifAbsent: args["if-absent"] }, writeOptions)
        : client.set(pairs, { ttlMs, ...writeOptions }),
    );
    console.log(args.json ? JSON.stringify({ revision }) : `OK (revision ${revision})`);
  },
});

/** `--ttl`: a duration above zero and at most a year, in ms. */
export function parseTtl(raw: string): number {
  const ttlMs = parseDuration("--ttl", raw);
  if (ttlMs > TTL_MS_MAX) throw new UsageError(`--ttl must be at most a year (8760h), not ${JSON.stringify(raw)}`);
  return ttlMs;
}

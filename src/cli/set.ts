import { defineCommand } from "citty";
import { connectionArgs, withClient } from "./connection.ts";
import { UsageError } from "./usage-error.ts";

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
    pairs: { type: "positional", description: "KEY=VALUE pairs (split at the first =)", required: false },
  },
  async run({ args }) {
    if (args._.length === 0) throw new UsageError("set needs at least one pair: homekv set KEY=VALUE...");
    const pairs = args._.map(parsePair);
    const { revision } = await withClient(args, (client) => client.set(pairs));
    console.log(args.json ? JSON.stringify({ revision }) : `OK (revision ${revision})`);
  },
});

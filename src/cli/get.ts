import { defineCommand } from "citty";
import { connectionArgs, withClient } from "./connection.ts";
import { columns, jsonValue, showValue } from "./format.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

export const getCommand = defineCommand({
  meta: { name: "get", description: "Read keys, all from one snapshot (missing keys show as (nil))" },
  args: {
    ...connectionArgs,
    keys: { type: "positional", description: "Keys to read", required: false },
    rev: { type: "string", description: "Read at this revision (default: the latest)" },
  },
  async run({ args }) {
    const keys = args._;
    if (keys.length === 0) throw new UsageError("get needs at least one key: homekv get KEY...");
    const at = parseIntegerFlag("--rev", args.rev, 0, 1, Number.MAX_SAFE_INTEGER);
    const { records, revision } = await withClient(args, (client) => client.get(keys, { revision: at }));
    if (args.json) {
      console.log(JSON.stringify({ revision, records: records.map(({ key, value }) => ({ key, ...jsonValue(value) })) }));
    } else {
      console.log(columns(records.map(({ key, value }) => [key, showValue(value)])));
    }
  },
});

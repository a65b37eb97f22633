import { defineCommand } from "citty";
import { connectionArgs, withClient } from "./connection.ts";
import { columns, jsonValue, showValue } from "./format.ts";
import { UsageError } from "./usage-error.ts";

export const getCommand = defineCommand({
  meta: { name: "get", description: "Read keys, all from one snapshot (missing keys show as (nil))" },
  args: {
    ...connectionArgs,
    keys: { type: "positional", description: "Keys to read", required: false },
  },
  async run({ args }) {
    const keys = args._;
    if (keys.length === 0) throw new UsageError("get needs at least one key: homekv get KEY...");
    const { records, revision } = await withClient(args, (client) => client.get(keys));
    if (args.json) {
      console.log(JSON.stringify({ revision, records: records.map(({ key, value }) => ({ key, ...jsonValue(value) })) }));
    } else {
      console.log(columns(records.map(({ key, value }) => [key, showValue(value)])));
    }
  },
});

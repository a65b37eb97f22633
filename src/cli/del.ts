import { defineCommand } from "citty";
import { connectionArgs, requestIdArg, requestIdOption, withClient } from "./connection.ts";
import { UsageError } from "./usage-error.ts";

export const delCommand = defineCommand({
  meta: { name: "del", description: "Delete keys atomically, as one commit (missing keys are fine)" },
  args: {
    ...connectionArgs,
    ...requestIdArg,
    keys: { type: "positional", description: "Keys to delete", required: false },
  },
  async run({ args }) {
    const keys = args._;
    if (keys.length === 0) throw new UsageError("del needs at least one key: homekv del KEY...");
    const { revision, deleted } = await withClient(args, (client) =>
      client.del(keys, requestIdOption(args["request-id"])),
    );
    console.log(args.json ? JSON.stringify({ revision, deleted }) : `deleted ${deleted} (revision ${revision})`);
  },
});

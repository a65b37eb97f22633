import { defineCommand } from "citty";
import { connectionArgs, withClient } from "./connection.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

export const compactCommand = defineCommand({
  meta: {
    name: "compact",
    description: "Make revisions below REV unreadable, so that their old versions can be reclaimed",
  },
  args: {
    ...connectionArgs,
    revision: { type: "positional", description: "The oldest revision to keep readable", required: false },
  },
  async run({ args }) {
    if (args._.length !== 1) throw new UsageError("compact needs one revision: homekv compact REV");
    const revision = parseIntegerFlag("REV", args._[0], 0, 1, Number.MAX_SAFE_INTEGER);
    const result = await withClient(args, (client) => client.compact(revision));
    console.log(
      args.json
        ? JSON.stringify(result)
        : `compacted below revision ${result.compactedRevision} (revision ${result.revision})`,
    );
  },
});

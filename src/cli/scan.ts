import { defineCommand } from "citty";
import { connectionArgs, withClient } from "./connection.ts";
import { jsonValue, showValue } from "./format.ts";
import { parseIntegerFlag, UsageError } from "./usage-error.ts";

export const scanCommand = defineCommand({
  meta: {
    name: "scan",
    description: "List keys of a prefix or a range [--from, --to) in key order, all at one revision",
  },
  args: {
    ...connectionArgs,
    prefix: { type: "string", description: "Keys that start with this" },
    from: { type: "string", description: "First key of the range (inclusive)" },
    to: { type: "string", description: "End of the range (exclusive)" },
    limit: { type: "string", description: "Stop after this many keys (default: all)" },
    "page-size": { type: "string", description: "Keys per request (default 1000)" },
    reverse: { type: "boolean", description: "Descending key order" },
    "keys-only": { type: "boolean", description: "Print keys only" },
    rev: { type: "string", description: "Read at this revision (default: the latest)" },
    serializable: {
      type: "boolean",
      description: "In a cluster: read this member's state without asking the leader (faster, may be stale)",
    },
  },
  async run({ args }) {
    if (args.prefix !== undefined && (args.from !== undefined || args.to !== undefined)) {
      throw new UsageError("give either --prefix or --from/--to, not both");
    }
    const limit = parseIntegerFlag("--limit", args.limit, Number.MAX_SAFE_INTEGER, 1, Number.MAX_SAFE_INTEGER);
    const pageSize = Math.min(limit, parseIntegerFlag("--page-size", args["page-size"], 1_000, 1, 10_000));
    const revision = parseIntegerFlag("--rev", args.rev, 0, 1, Number.MAX_SAFE_INTEGER);
    await withClient(args, async (client) => {
      let printed = 0;
      let page = await client.scanPage({
        prefix: args.prefix,
        start: args.from,
        end: args.to,
        limit: pageSize,
        reverse: args.reverse,
        keysOnly: args["keys-only"],
        revision,
        serializable: args.serializable === true,
      });
      for (;;) {
        for (const record of page.records) {
          if (printed === limit) return;
          printed++;
          if (args.json) {
            const value = args["keys-only"] ? {} : jsonValue(record.value);
            console.log(
              JSON.stringify({ key: record.key, ...value, mod_revision: record.modRevision, revision: page.revision }),
            );
          } else console.log(args["keys-only"] ? record.key : `${record.key}  ${showValue(record.value)}`);
        }
        if (page.continuation === "" || printed === limit) return;
        page = await client.scanPage({ continuation: page.continuation, limit: Math.min(pageSize, limit - printed) });
      }
    });
  },
});

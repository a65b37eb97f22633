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
    "with-ttl": { type: "boolean", description: "Also show how long keys with a TTL have left (--json: ttl_ms)" },
    serializable: {
      type: "boolean",
      description: "In a cluster: read this member's state without asking the leader (faster, may be stale)",
    },
  },
  async run({ args }) {
    const keys = args._;
    if (keys.length === 0) throw new UsageError("get needs at least one key: homekv get KEY...");
    const at = parseIntegerFlag("--rev", args.rev, 0, 1, Number.MAX_SAFE_INTEGER);
    const withTtl = args["with-ttl"] === true;
    const { records, revision } = await withClient(args, (client) =>
      client.get(keys, { revision: at, withTtl, serializable: args.serializable === true }),
    );
    // ttlMs is 0 for a key without a TTL (and for every key without --with-ttl).
    const ttlJson = (ttlMs: number) => (withTtl ? { ttl_ms: ttlMs > 0 ? ttlMs : null } : {});
    const ttlText = (ttlMs: number) => (ttlMs > 0 ? ` (ttl ${formatTtl(ttlMs)})` : "");
    if (args.json) {
      console.log(
        JSON.stringify({
          revision,
          records: records.map(({ key, value, ttlMs }) => ({ key, ...jsonValue(value), ...ttlJson(ttlMs) })),
        }),
      );
    } else {
      console.log(columns(records.map(({ key, value, ttlMs }) => [key, showValue(value) + ttlText(ttlMs)])));
    }
  },
});

/** Time left as a person reads it: `850ms`, `29.5s`, `4m 30s`, `2h 5m`, `3d 4h`. */
export function formatTtl(ms: number): string {
  if (ms < 1_000) return `${Math.ceil(ms)}ms`;
  if (ms < 60_000) return `${Math.floor(ms / 100) / 10}s`;
  const units: [string, number][] = [
    ["d", 86_400_000],
    ["h", 3_600_000],
    ["m", 60_000],
    ["s", 1_000],
  ];
  const first = units.findIndex(([, size]) => ms >= size);
  const [bigName, bigSize] = units[first]!;
  const [smallName, smallSize] = units[first + 1]!;
  return `${Math.floor(ms / bigSize)}${bigName} ${Math.floor((ms % bigSize) / smallSize)}${smallName}`;
}

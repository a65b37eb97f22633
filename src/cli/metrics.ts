import { defineCommand } from "citty";
import { connectionArgs, withClient } from "./connection.ts";
import { columns } from "./format.ts";

export const metricsCommand = defineCommand({
  meta: { name: "metrics", description: "Show the server's metrics (keys, value bytes, commands, revision, GC)" },
  args: { ...connectionArgs },
  async run({ args }) {
    const metrics = await withClient(args, (client) => client.metrics());
    // The proto's own field names, so that output matches the API table in the README.
    const rows = Object.entries(metrics).map(([name, value]) => [snakeCase(name), value as number] as const);
    if (args.json) console.log(JSON.stringify(Object.fromEntries(rows)));
    else {
      // A server of one has no Raft group: its raft_* fields say nothing, and are left out.
      const shown = metrics.replicated
        ? rows
        : rows.filter(([name]) => name !== "replicated" && !name.startsWith("raft_"));
      console.log(columns(shown.map(([name, value]) => [name, String(value)])));
    }
  },
});

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

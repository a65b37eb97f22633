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
    else console.log(columns(rows.map(([name, value]) => [name, String(value)])));
  },
});

function snakeCase(name: string): string {
  return name.replace(/[A-Z]/g, (c) => `_${c.toLowerCase()}`);
}

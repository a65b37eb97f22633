import { defineCommand } from "citty";
import { connectionArgs, withClient } from "./connection.ts";
import { UsageError } from "./usage-error.ts";

export const backupCommand = defineCommand({
  meta: {
    name: "backup",
    description:
      "Ask the server to write a consistent copy of its store, while it serves, as a new data directory DIR on the server's machine (an absolute path); `homekv serve --data-dir DIR` starts from it",
  },
  args: {
    ...connectionArgs,
    dir: { type: "positional", description: "The directory to create, on the server's machine", required: false },
    timeout: { ...connectionArgs.timeout, description: "Milliseconds to wait (default 600000)" },
  },
  async run({ args }) {
    if (args._.length !== 1) throw new UsageError("backup needs one directory: homekv backup DIR");
    const dir = args._[0]!;
    const backup = await withClient({ ...args, timeout: args.timeout ?? "600000" }, (client) => client.backup(dir));
    console.log(
      args.json
        ? JSON.stringify(backup)
        : `backup at revision ${backup.revision}: ${backup.keys} keys, ${backup.bytes} bytes (${backup.linkedBytes} of them hard links) in ${backup.durationMs} ms`,
    );
  },
});

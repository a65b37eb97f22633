import { defineCommand } from "citty";
import { connectionArgs, withClient } from "./connection.ts";

export const checkpointCommand = defineCommand({
  meta: { name: "checkpoint", description: "Ask the server to write a checkpoint now (and drop the WAL it covers)" },
  args: {
    ...connectionArgs,
    timeout: { ...connectionArgs.timeout, description: "Milliseconds to wait (default 60000)" },
    serializable: {
      type: "boolean",
      description:
        "In a cluster: checkpoint what this member has applied without catching up with the leader first (works without a quorum; may miss the latest writes)",
    },
  },
  async run({ args }) {
    // A checkpoint is the answering member's own: with several endpoints, the output names which.
    const { written, endpoint } = await withClient({ ...args, timeout: args.timeout ?? "60000" }, async (client) => ({
      written: await client.checkpoint({ serializable: args.serializable === true }),
      endpoint: client.address,
    }));
    console.log(
      args.json
        ? JSON.stringify({ ...written, endpoint })
        : `checkpoint at revision ${written.revision} on ${endpoint}: ${written.keys} keys, ${written.bytes} bytes in ${written.durationMs} ms`,
    );
  },
});

import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in how the Checkpoint call's `serializable` travels from the CLI to a cluster
 * member's replicas (`npm run mutants -- --set checkpoint-call`), judged by the real-process tests
 * of a member and a partitioned node left without their quorums. Same rules as raft-mutants.ts:
 * `search` occurs exactly once in `file`.
 */
export const CHECKPOINT_CALL_MUTANTS: readonly Mutant[] = [
  {
    name: "checkpoint-cli-drops-serializable",
    description: "homekv checkpoint --serializable sends a linearizable Checkpoint call",
    file: "src/cli/checkpoint.ts",
    search: "      written: await client.checkpoint({ serializable: args.serializable === true }),\n",
    replace: "      written: await client.checkpoint({ serializable: false }),\n",
  },
  {
    name: "checkpoint-service-drops-serializable",
    description: "the server takes every Checkpoint call as linearizable, whatever the request says",
    file: "src/server/service.ts",
    search: "      const written = await db.checkpoint({ serializable });\n",
    replace: "      const written = await db.checkpoint();\n",
  },
  {
    name: "partitioned-node-drops-checkpoint-options",
    description: "a partitioned node checkpoints its replicas linearizably, whatever the call asked",
    file: "src/node/partitioned-member.ts",
    search: "        checkpoint: (options) => replicas.checkpoint(options),\n",
    replace: "        checkpoint: () => replicas.checkpoint(),\n",
  },
  {
    name: "partitioned-database-drops-checkpoint-options",
    description: "a partitioned node's database drops the Checkpoint call's options",
    file: "src/node/partitioned-database.ts",
    search: "    checkpoint: (options) => parts.checkpoint(options),\n",
    replace: "    checkpoint: () => parts.checkpoint(),\n",
  },
];

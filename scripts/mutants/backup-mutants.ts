import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in a replicated cluster's backup and in a cluster node's refusal of a single
 * server's data (`npm run mutants -- --set backup`), judged by their in-process tests and the
 * real-process one that backs a cluster up through a follower. Same rules as raft-mutants.ts:
 * `search` occurs exactly once in `file`.
 */
export const BACKUP_MUTANTS: readonly Mutant[] = [
  {
    name: "member-backup-skips-catch-up",
    description:
      "a member backs up what it applied without a ReadIndex round: a lagging follower's backup misses writes",
    file: "src/cluster/replication/replicated-member.ts",
    search: "            await catchUpForBackup(() => driver!.readBarrier(options.readTimeoutMs));\n",
    replace: "",
  },
  {
    name: "member-backup-catch-up-swallowed",
    description: "a member whose catch-up times out backs up anyway",
    file: "src/cluster/replication/member-checkpoints.ts",
    search: "    throw error instanceof ReadTimeoutError ? timedOut(error.message) : error;\n",
    replace: "    if (!(error instanceof ReadTimeoutError)) throw error;\n",
  },
  {
    name: "member-starts-on-single-server-data",
    description: "a cluster member starts on a single server's data directory and ignores its data",
    file: "src/node/replicated-database.ts",
    search: "    await refuseSingleServerData(realFileSystem, dir, `${dir}/raft`);\n",
    replace: "",
  },
  {
    name: "single-server-data-misses-flsm",
    description: "a cluster node takes a data directory of FLSM tables for its own",
    file: "src/cluster/replication/single-server-data.ts",
    search: "    (await list(`${dir}/flsm`)).length > 0 ||\n",
    replace: "",
  },
];

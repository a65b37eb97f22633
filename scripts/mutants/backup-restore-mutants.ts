import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in a replicated cluster's backup and `homekv restore` (`npm run mutants --
 * --set backup-restore`), judged by their in-process tests and the real-process one that backs a
 * cluster up, restores it and adds a member. Same rules as raft-mutants.ts: `search` occurs exactly
 * once in `file`.
 */
export const BACKUP_RESTORE_MUTANTS: readonly Mutant[] = [
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
    name: "restore-without-snapshot",
    description: "restore writes the checkpoint but leaves the Raft log without the snapshot standing for it",
    file: "src/cluster/replication/restore-member.ts",
    search:
      "      await log.installSnapshot({ index: RESTORED_INDEX, term: RESTORED_TERM, data: CHECKPOINT_SNAPSHOT_DATA, conf });\n",
    replace: "",
  },
  {
    name: "restore-founder-not-a-voter",
    description: "the restored group's configuration has no voter",
    file: "src/cluster/replication/restore-member.ts",
    search: "    const conf: ConfState = { voters: [id], learners: [] };\n",
    replace: "    const conf: ConfState = { voters: [], learners: [id] };\n",
  },
  {
    name: "restore-takes-a-server-data-dir",
    description: "restore takes a server's data directory, whose WAL may hold writes its checkpoint lacks",
    file: "src/cluster/replication/restore-member.ts",
    search: "  if (wal.length > 0)\n",
    replace: "  if (wal.length < 0)\n",
  },
  {
    name: "member-starts-on-single-server-data",
    description: "a cluster member starts on a single server's data directory and ignores its data",
    file: "src/node/replicated-database.ts",
    search: "    await refuseSingleServerData(realFileSystem, dir);\n",
    replace: "",
  },
];

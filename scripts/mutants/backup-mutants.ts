import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in a replicated cluster's backup, its restore as a new cluster, and a cluster
 * node's refusal of data it would not load (`npm run mutants -- --set backup`), judged by their
 * in-process tests and the real-process ones that back a cluster up, restore it and add an old
 * member and a mistaken joiner to it. Same rules as raft-mutants.ts: `search` occurs exactly once
 * in `file`.
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
  {
    name: "restore-without-snapshot",
    description: "restore writes the checkpoint but leaves the Raft log without the snapshot standing for it",
    file: "src/cluster/replication/restore-member.ts",
    search: "      await log.installSnapshot({ ...position, data: CHECKPOINT_SNAPSHOT_DATA, conf });\n",
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
    name: "restore-at-founding-position",
    description: "the restored log begins at index 1 of term 1, where every founded log begins",
    file: "src/cluster/replication/restore-member.ts",
    search: "  return { index: nowMs * 1_000, term: nowMs };\n",
    replace: "  return { index: 1, term: 1 };\n",
  },
  {
    name: "restore-term-low",
    description: "the restored log's term is 1: a member of the old cluster outranks it",
    file: "src/cluster/replication/restore-member.ts",
    search: "  return { index: nowMs * 1_000, term: nowMs };\n",
    replace: "  return { index: nowMs * 1_000, term: 1 };\n",
  },
  {
    name: "restore-takes-a-server-data-dir",
    description: "restore takes a server's data directory, whose WAL may hold writes its checkpoint lacks",
    file: "src/cluster/replication/restore-member.ts",
    search: "  if (wal.length > 0)\n",
    replace: "  if (wal.length < 0)\n",
  },
  {
    name: "restored-dir-under-another-name",
    description: "a restored data directory starts under another member's name",
    file: "src/node/replicated-database.ts",
    search:
      '    await restoredDirCheck(realFileSystem, dir, config.cluster.nodeId, raftConfig.founding.kind === "gossip");\n',
    replace: "",
  },
];

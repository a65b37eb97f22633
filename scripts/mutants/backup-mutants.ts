import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in a replicated or a partitioned cluster's backup, a replicated cluster's
 * restore as a new cluster, and a cluster node's refusal of data it would not load (`npm run
 * mutants -- --set backup`), judged by their in-process tests and the real-process ones that back a
 * cluster up, restore it and add an old member and a mistaken joiner to it. Same rules as raft-mutants.ts: `search` occurs exactly once
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
    search: '    await refuseOtherKindsData(realFileSystem, dir, "replicated");\n',
    replace: "",
  },
  {
    name: "single-server-starts-on-member-data",
    description:
      "a single server starts on a restored member's data directory, serves it empty and writes a WAL beside it",
    file: "src/node/start-node.ts",
    search: '  await refuseOtherKindsData(realFileSystem, storage.dir, "single");\n',
    replace: "",
  },
  {
    name: "data-dir-kind-misses-flsm",
    description: "FLSM tables are not taken for a single server's data",
    file: "src/node/data-dir-kind.ts",
    search: "    holds: (d) => d.wal.length > 0 || d.flsm.length > 0 ||",
    replace: "    holds: (d) => d.wal.length > 0 ||",
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
    search: "  return { index, term: nowMs };\n",
    replace: "  return { index: 1, term: 1 };\n",
  },
  {
    name: "restore-takes-a-server-data-dir",
    description: "restore takes a server's data directory, whose WAL may hold writes its checkpoint lacks",
    file: "src/cluster/replication/restore-member.ts",
    search: "/wal`)).length > 0)\n",
    replace: "/wal`)).length < 0)\n",
  },
  {
    name: "restored-dir-not-checked",
    description: "a restored data directory starts under another member's name or cluster id",
    file: "src/node/replicated-database.ts",
    search:
      "    await restoredDirCheck(realFileSystem, dir, { name: config.cluster.nodeId, clusterId: config.cluster.clusterId });\n",
    replace: "",
  },
  {
    name: "restored-dir-ignores-cluster-id",
    description: "a restored data directory starts under another cluster id (the old cluster's members may reach it)",
    file: "src/cluster/replication/restore-member.ts",
    search: "  if (restoredFor !== self.name || clusterId !== self.clusterId)\n",
    replace: "  if (restoredFor !== self.name)\n",
  },
  {
    name: "restored-cluster-takes-another-log",
    description: "a member under a restored cluster's id starts on the old cluster's log",
    file: "src/cluster/replication/restore-member.ts",
    search: "  if (lastIndex > 0 && lastIndex < began)\n",
    replace: "  if (lastIndex > 0 && lastIndex < 0)\n",
  },
  {
    name: "restored-cluster-founded-again",
    description: "a server founds a group of its own under a restored cluster's id",
    file: "src/node/replicated-database.ts",
    search:
      "    await refuseFoundingRestoredCluster(realFileSystem, dir, config.cluster.clusterId, raftConfig.founding);\n",
    replace: "",
  },
  {
    name: "restore-drops-the-floor",
    description:
      "restore loses the backup's compacted revision: the restored cluster answers reads below it with the versions kept at it",
    file: "src/cluster/replication/restore-member.ts",
    search: "    store.restore(checkpoint.revision, checkpoint.compactedRevision, checkpoint.chains),\n",
    replace: "    store.restore(checkpoint.revision, 0, checkpoint.chains),\n",
  },
  {
    name: "partitioned-backup-keeps-no-floor",
    description:
      "a partitioned cluster's backup is not compacted at its revision: a read below it answers the backup's versions as if they were the history",
    file: "src/node/partitioned-backup.ts",
    search: "    compactedRevision: ts,\n",
    replace: "    compactedRevision: 0,\n",
  },
  {
    name: "partitioned-backup-timestamp-per-round",
    description: "each round of a partitioned cluster's backup reads at a fresh timestamp: commits are torn",
    file: "src/node/partitioned-backup.ts",
    search: "  const snapshot = clusterAt(ts, (after) =>\n    coordinator.scan(\n      { after },\n      ts,\n",
    replace:
      "  const snapshot = clusterAt(ts, async (after) =>\n    coordinator.scan(\n      { after },\n      await coordinator.timestampNotBelow(undefined),\n",
  },
  {
    name: "partitioned-backup-first-round-only",
    description: "a partitioned cluster's backup stops after the scan's first round that finds a key",
    file: "src/node/partitioned-backup.ts",
    search: "        done = cursor === undefined;\n",
    replace: "        done = true;\n",
  },
  {
    name: "partitioned-backup-stops-at-an-empty-round",
    description:
      "a partitioned cluster's backup ends at a round that found no live key (its partitions cut short by deleted keys)",
    file: "src/node/partitioned-backup.ts",
    search: "        if (page.records.length > 0) return page.records.map(chainOf);\n",
    replace: "        return page.records.map(chainOf);\n",
  },
  {
    name: "partitioned-backup-drops-ttl",
    description: "a partitioned cluster's backup loses the keys' TTL deadlines",
    file: "src/node/partitioned-backup.ts",
    search: "        ...(record.expiresAtMs === undefined ? {} : { expiresAtMs: record.expiresAtMs }),\n",
    replace: "",
  },
  {
    name: "partitioned-backup-creates-at-mod",
    description: "a partitioned cluster's backup takes each key's last write for its creation",
    file: "src/node/partitioned-backup.ts",
    search: "        createRevision: record.createRevision,\n",
    replace: "        createRevision: record.modRevision,\n",
  },
];

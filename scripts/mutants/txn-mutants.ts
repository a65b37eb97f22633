import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in the transaction layer (src/cluster/txn: Percolator's locks and decisions,
 * the commit pipeline), one at a time (`npm run mutants -- --set txn`), judged by test/cluster/txn.
 * Same rules as raft-mutants.ts: `search` occurs exactly once in `file`.
 */
const PERCOLATOR = "src/cluster/txn/percolator.ts";

export const TXN_MUTANTS: readonly Mutant[] = [
  {
    name: "prewrite-ignores-newer-commit",
    description:
      "a key written after the transaction started does not refuse its prewrite or its one-phase commit: a lost update",
    file: PERCOLATOR,
    search: "    return committedTs >= startTs ? {",
    replace: "    return committedTs > Infinity ? {",
  },
  {
    name: "prewrite-steals-lock",
    description:
      "another transaction's lock does not refuse a prewrite or a one-phase commit, which takes the key over",
    file: PERCOLATOR,
    search: "    if (lock && lock.startTs !== own) return {",
    replace: "    if (lock && lock.startTs < 0) return {",
  },
  {
    name: "commit-after-rollback",
    description: "a primary whose transaction a reader rolled back is committed anyway",
    file: PERCOLATOR,
    search: '    if (fate === 0) return refuse({ kind: "rolled-back", startTs });\n    if (primary',
    replace: "    if (primary",
  },
  {
    name: "rollback-after-commit",
    description: "a reader's rollback undoes the decision of a committed transaction",
    file: PERCOLATOR,
    search: "      if (fate !== undefined && fate !== 0) return refuse",
    replace: "      if (fate === -1) return refuse",
  },
  {
    name: "read-past-locks",
    description: "a read does not stop at the lock of a transaction that may commit below its timestamp",
    file: PERCOLATOR,
    search: "  return lock.startTs <= ts && lock.value !== LOCK_ONLY && !bypass?.has(lock.startTs);",
    replace: "  return lock.startTs < 0;",
  },
  {
    name: "lock-only-blocks-reads",
    description: "readers wait on a lock that writes nothing (they resolve it, or wait out its TTL)",
    file: PERCOLATOR,
    search: " && lock.value !== LOCK_ONLY && ",
    replace: " && ",
  },
  {
    name: "commit-without-primary-lock",
    description: "a primary's commit decides though its lock is gone (a reader rolled it back)",
    file: PERCOLATOR,
    search: "      if (this.locks.get(primary)?.startTs !== startTs) return refuse",
    replace: "      if (this.locks.get(primary)?.startTs === -1) return refuse",
  },
  {
    name: "pipeline-two-requests",
    description:
      "a second request for timestamps goes out before the first is answered: answers may cross, and the log's timestamps go down",
    file: "src/cluster/txn/commit-pipeline.ts",
    search: "    if (this.asking || this.waiting.length === 0) return;",
    replace: "    if (this.waiting.length === 0) return;",
  },
  {
    name: "barrier-skips-request-in-flight",
    description:
      "a read does not wait for writes whose timestamps were being asked for: one below its timestamp appears after it",
    file: "src/cluster/txn/commit-pipeline.ts",
    search: "    this.settled = Promise.all([before, done]).then(() => {});",
    replace: "    this.settled = before;",
  },
  {
    name: "merge-ignores-watermark",
    description: "a merged watch hands out changes before every partition resolved past them",
    file: "src/cluster/txn/change-merge.ts",
    search: "this.held.filter((event) => event.revision <= watermark)",
    replace: "this.held.filter(() => true)",
  },
  {
    name: "merge-unsorted",
    description: "a merged watch hands out a batch in the order pushed, not by revision",
    file: "src/cluster/txn/change-merge.ts",
    search: ".sort((a, b) => a.revision - b.revision);",
    replace: ";",
  },
  {
    name: "merge-resolved-falls",
    description: "a lower resolved timestamp announced later lowers the partition's, below changes handed out",
    file: "src/cluster/txn/change-merge.ts",
    search: "    this.resolved.set(partition, Math.max(this.resolvedOf(partition), ts));",
    replace: "    this.resolved.set(partition, ts);",
  },
  {
    name: "store-never-late",
    description:
      "a secondary committed below the partition's revision is applied as a new command (the store refuses it)",
    file: "src/cluster/txn/store-versions.ts",
    search: "      if (commitTs > store.revision) store.apply",
    replace: "      if (commitTs > 0) store.apply",
  },
  {
    name: "store-reads-the-future",
    description: "a read at a timestamp past the partition's revision is passed to the store, which refuses it",
    file: "src/cluster/txn/store-versions.ts",
    search: "store.read([key], Math.min(ts, store.revision))[0]",
    replace: "store.read([key], ts)[0]",
  },
  {
    name: "blind-write-retry-throws",
    description:
      "a blind one-phase write proposed twice reaches the store, which refuses it where it is applied: the group stops",
    file: PERCOLATOR,
    search: "this.conflict(key, startTs ?? commitTs)",
    replace: "this.conflict(key, startTs ?? Number.POSITIVE_INFINITY)",
  },
  {
    name: "one-phase-key-twice-throws",
    description:
      "a one-phase command writing a key twice reaches the store with both, which refuses it where it is applied: the group stops",
    file: PERCOLATOR,
    search: "    const written = writes(last.values());",
    replace: "    const written = writes(mutations);",
  },
  {
    name: "one-phase-read-timestamp-past-pipeline",
    description:
      "a one-partition write that read first takes its commit timestamp and is proposed past the commit pipeline: it can land below a read that already looked (a lost update)",
    file: "src/cluster/txn/coordinator.ts",
    search:
      "      const { ts, result } = await this.options.access.write(partition, writes, readAt);\n      return { ts: await this.settled(result, ts) };",
    replace:
      '      if (readAt === undefined) {\n        const { ts, result } = await this.options.access.write(partition, writes);\n        return { ts: await this.settled(result, ts) };\n      }\n      const commitTs = await this.options.timestamps(1);\n      return { ts: await this.settled(await this.options.access.propose(partition, { type: "onePhase", startTs: readAt, commitTs, mutations: writes }), commitTs) };',
  },
  {
    name: "writer-leaves-locks",
    description:
      "a write refused by an abandoned transaction's lock does not resolve it: every retry is refused until a reader comes",
    file: "src/cluster/txn/coordinator.ts",
    search: '    if (refusal.kind === "locked")\n      await this.resolve(',
    replace: '    if (refusal.kind === "locked" && ts < 0)\n      await this.resolve(',
  },
  {
    name: "reader-aborts-missing-primary",
    description: "a reader rolls back at once a transaction whose primary's prewrite has not arrived, within its TTL",
    file: "src/cluster/txn/coordinator.ts",
    search: ': status.state === "missing" ? lock : undefined;',
    replace: ": undefined;",
  },
  {
    name: "pipeline-crosses-terms",
    description: "a one-round write is proposed at a timestamp asked for in an earlier term of its leader",
    file: "src/cluster/txn/commit-pipeline.ts",
    search: "            if (this.options.leaderTerm() !== term) throw notLeading();\n",
    replace: "",
  },
  {
    name: "unanswered-write-sent-again",
    description: "a one-round write whose leader did not answer in time is sent again (it may have run: twice)",
    file: "src/cluster/txn/partition-rpc.ts",
    search: "          if (unknown) throw unknown;\n",
    replace: "",
  },
  {
    name: "scan-past-a-cut",
    description:
      "a scan answers keys past where a partition's page was cut short, so the next page skips that partition's keys between",
    file: "src/cluster/txn/coordinator.ts",
    search: ".filter((record) => bound === undefined || order(record.key, bound) <= 0)",
    replace: ".filter(() => true)",
  },
  {
    name: "partition-checkpoint-without-barrier",
    description:
      "the Checkpoint call writes a replica's applied state without a ReadIndex round: a follower's misses acknowledged writes",
    file: "src/cluster/txn/partition-group.ts",
    search: "    await catchUpForCheckpoint(options, () => this.driver.readBarrier(this.options.readTimeoutMs));\n",
    replace:
      "    await catchUpForCheckpoint({ serializable: true }, () => this.driver.readBarrier(this.options.readTimeoutMs));\n",
  },
  {
    name: "partition-checkpoint-serializable-waits",
    description: "a serializable Checkpoint call still waits for each replica's ReadIndex round",
    file: "src/cluster/txn/partition-group.ts",
    search: "    await catchUpForCheckpoint(options, () => this.driver.readBarrier(this.options.readTimeoutMs));\n",
    replace: "    await catchUpForCheckpoint(undefined, () => this.driver.readBarrier(this.options.readTimeoutMs));\n",
  },
  {
    name: "scan-blind-to-locks",
    description:
      "a partition's scan reports no lock in its range: a committed transaction's secondary is read as not written",
    file: "src/cluster/txn/partition-group.ts",
    search: "return { ...page, locks: this.partition.locksAt(ts, covered, bypass) };",
    replace: "return { ...page, locks: [] };",
  },
  {
    name: "compaction-past-locks",
    description:
      "a partition compacts past an open lock's start: its secondary, committed late, is refused as compacted",
    file: PERCOLATOR,
    search:
      "    for (const lock of this.locks.values()) if (lock.value !== LOCK_ONLY) safe = Math.min(safe, lock.startTs - 1);\n",
    replace: "",
  },
  {
    name: "compaction-held-by-lock-only",
    description:
      "a lock-only lock holds compaction back: a request id's lock, left by a dead coordinator and met by no reader, holds it for good",
    file: PERCOLATOR,
    search: " if (lock.value !== LOCK_ONLY) safe = ",
    replace: " safe = ",
  },
  {
    name: "watch-passes-locks",
    description:
      "a partition resolves its changes past its open locks: a secondary committed late falls behind a watcher",
    file: "src/cluster/txn/partition-group.ts",
    search: "    const resolved = Math.min(ts, ...locks.map(({ lock }) => lock.startTs));",
    replace: "    const resolved = ts;",
  },
  {
    name: "checks-below-compaction",
    description:
      "a write's conflict check runs at or below the compacted revision, where GC may have taken what it needs (and differently on each replica)",
    file: PERCOLATOR,
    search: '    if (startTs <= compacted) return { kind: "write-conflict", key, committedTs: compacted };\n',
    replace: "",
  },
  {
    name: "lock-only-written",
    description: "a lock-only mutation is committed as a version, like a write",
    file: PERCOLATOR,
    search: "mutation.value !== LOCK_ONLY",
    replace: "mutation.value !== null || true",
  },
  {
    name: "txn-reads-unlocked",
    description:
      "a Txn across partitions locks only the keys it writes, not those its compares and gets read (write skew)",
    file: "src/node/partitioned-database.ts",
    search: "...[...new Set(locked)].filter((key) => !written.has(key))",
    replace: "...[...new Set(locked)].filter(() => false)",
  },
  {
    name: "txn-commits-blind",
    description: "a Txn across partitions commits without the timestamp it read at: a write since then is not seen",
    file: "src/node/partitioned-database.ts",
    search: "await coordinator.commit(mutations, read.revision, request);",
    replace: "await coordinator.commit(mutations, undefined, request);",
  },
  {
    name: "members-uncommitted",
    description:
      "a partition's leader answers the members it goes by, a removal appended but not committed among them: a replica may retire while its group still counts it",
    file: "src/cluster/txn/partition-group.ts",
    search: "    return this.raft.confState(index);",
    replace: "    return this.raft.confState();",
  },
  {
    name: "ttl-lost-in-lock",
    description: "a prewrite's lock drops the put's TTL: a key written across partitions never expires",
    file: PERCOLATOR,
    search: "const ttl = mutation.expiresAtMs === undefined ? {} : { keyExpiresAtMs: mutation.expiresAtMs };",
    replace: "const ttl = {};",
  },
  {
    name: "expiry-deletes-newer-version",
    description:
      "a TTL's expiry deletes a key written since the version whose TTL it was (a commit landing below the delete)",
    file: PERCOLATOR,
    search: "revision < commitTs && this.versions.newest(key) === revision",
    replace: "revision < commitTs && this.versions.newest(key) >= revision",
  },
  {
    name: "expiry-under-lock",
    description: "a TTL's expiry deletes a key a transaction holds: its commit may land below the delete",
    file: PERCOLATOR,
    search: '      if (lock) return refuse({ kind: "locked", key, lock });',
    replace: '      if (lock && lock.startTs < 0) return refuse({ kind: "locked", key, lock });',
  },
  {
    name: "checkpoint-without-locks",
    description:
      "a partition's checkpoint leaves its locks out: a replica sent it, or restarted from it, lets readers and writers past an open transaction",
    file: "src/cluster/txn/partition-group.ts",
    search: "        transactions: encodeTxnState(this.partition.state()),",
    replace: "        transactions: encodeTxnState({ locks: [], fates: this.partition.state().fates }),",
  },
  {
    name: "checkpoint-without-fates",
    description:
      "a partition's transaction state drops the fates: a transaction decided before the checkpoint is open again after it (a late prewrite accepted, a commit taken back)",
    file: "src/cluster/txn/txn-state-format.ts",
    search: "  for (const [startTs, commitTs] of state.fates) w.varint(startTs).varint(commitTs);",
    replace: "  for (const [startTs] of state.fates) w.varint(startTs).varint(0);",
  },
  {
    name: "checkpoint-lock-without-ttl",
    description: "a lock in a checkpoint loses the TTL of the version it writes: the key never expires",
    file: "src/cluster/txn/txn-state-format.ts",
    search: "    writeMutation(w, { key, value: lock.value, ...ttlOf(lock) });",
    replace: "    writeMutation(w, { key, value: lock.value });",
  },
  {
    name: "stale-checkpoint-loaded",
    description:
      "a replica placed again loads the checkpoint an earlier replica left beside its empty log, and passes the leader's entries over",
    file: "src/cluster/txn/partition-group.ts",
    search: "    if (options.log.lastIndex() === 0) await removeCheckpoints(fs, dir);",
    replace: "",
  },
  {
    name: "request-id-not-remembered",
    description: "the commit that decides a write with a request id forgets the id: a retry applies a second time",
    file: PERCOLATOR,
    search: "      if (request) this.requestIds.remember(request.id, { ...request, revision: commitTs });",
    replace: "",
  },
  {
    name: "request-id-not-checked",
    description: "a transaction whose request id was decided before commits anyway",
    file: PERCOLATOR,
    search: '      if (seen) return refuse({ kind: "duplicate", write: seen });',
    replace: "",
  },
  {
    name: "request-ids-not-in-checkpoint",
    description:
      "a partition's checkpoint leaves its request ids out: after a restart or a snapshot a retry applies again",
    file: "src/cluster/txn/partition-group.ts",
    search: "        requestIds: this.partition.requestIds.entries(),",
    replace: "        requestIds: [],",
  },
  {
    name: "request-decided-by-first-key",
    description:
      "a write with a request id is decided by its first key's partition: a retry that writes other keys (a Txn taking its other branch) is decided elsewhere, and applies",
    file: "src/cluster/txn/coordinator.ts",
    search: "      const byPartition = this.group([primary, ...mutations]);",
    replace: "      const byPartition = this.group(mutations);",
  },
  {
    name: "checkpoints-take-no-turns",
    description:
      "a node's replicas write their checkpoints all at once: each leaves unsynced bytes for the next log fsync, together a stall",
    file: "src/cluster/txn/partition-group.ts",
    search: "        turns: settings.turns,\n",
    replace: "",
  },
  {
    name: "recent-changes-forget-eviction",
    description:
      "a partition's recent writes forget their oldest without saying so: a poll from before it is told nothing changed, and a watcher misses the change",
    file: "src/cluster/txn/recent-changes.ts",
    search: "      this.coveredAfter = Math.max(this.coveredAfter, this.appliedAt[this.head]!);\n",
    replace: "",
  },
  {
    name: "recent-changes-stop-at-revision",
    description:
      "a poll looks back only to the first write at or below its revision: a secondary committed late, behind newer writes, is missed",
    file: "src/cluster/txn/recent-changes.ts",
    search: "      if (this.appliedAt[i]! <= after) return false;",
    replace: "      if (this.revisions[i]! <= after) return false;",
  },
];

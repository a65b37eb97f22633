import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in the in-memory MVCC store's chains and their garbage collection
 * (src/storage/mvcc), in what both engines share (store-core.ts: bugs that only revisions with gaps
 * or writes committed late reveal), and in the Raft log engine that many groups share
 * (group-log-*.ts) and the WAL's segments (wal-writer.ts), one at a time (`npm run mutants -- --set storage`), each judged by the
 * storage tests: the model-based property tests first among them. Same rules as raft-mutants.ts:
 * `search` occurs exactly once in `file`.
 */
const CHAINS = "src/storage/mvcc/version-chain.ts";
const STORE = "src/storage/mvcc/store.ts";
const STORE_CORE = "src/storage/mvcc/store-core.ts";
const GROUP_ENGINE = "src/cluster/raft/group-log-engine.ts";
const GROUP_REPLAY = "src/cluster/raft/group-log-replay.ts";
const GROUP_SEGMENTS = "src/cluster/raft/group-log-segments.ts";
const GROUP_LOG = "src/cluster/raft/group-raft-log.ts";
const DURABLE_LOG = "src/cluster/raft/durable-log.ts";
const WAL_WRITER = "src/storage/wal/wal-writer.ts";
const CHUNKED_ROWS = "src/storage/mvcc/packed/chunked-rows.ts";
const KEY_INDEX = "src/storage/mvcc/packed/key-index.ts";
const SORTED_LEAVES = "src/storage/mvcc/packed/sorted-leaves.ts";
const STORED_KEYS = "src/storage/mvcc/packed/key-bytes.ts";

export const STORAGE_MUTANTS: readonly Mutant[] = [
  {
    name: "gc-drops-from-reused-row",
    description: "a GC queue entry drops what is older than its row though the row now holds a later version",
    file: CHAINS,
    search: "    if (table.revision(slot) !== revision || Number.isNaN(value)) return 0;",
    replace: "    if (Number.isNaN(value)) return 0;",
  },
  {
    name: "gc-drops-the-visible-version",
    description: "GC of a queue entry frees the version a read at the floor sees, with the older ones",
    file: CHAINS,
    search:
      "    const oldest = table.older(slot);\n    if (oldest === NONE) return 0;\n    table.setOlder(slot, NONE);",
    replace: "    const oldest = slot;\n    if (oldest === NONE) return 0;",
  },
  {
    name: "gc-ignores-the-floor",
    description: "a write collects the queue's entries whether or not the floor has passed them",
    file: STORE,
    search: "    for (let i = 0; i < 2 && this.collectNext(floor) !== undefined; i++);",
    replace: "    for (let i = 0; i < 2 && this.collectNext(Number.POSITIVE_INFINITY) !== undefined; i++);",
  },
  {
    name: "gc-ring-not-trimmed",
    description: "a GC queue entry frees a ringed chain's oldest versions and leaves them in its ring",
    file: CHAINS,
    search: "    if (ring !== undefined) this.dropFromRing(id, ring, dropped);\n    return dropped;",
    replace: "    return dropped;",
  },
  {
    name: "gc-tombstone-kept-forever",
    description: "a tombstone a queue entry names is taken as nothing to do, so the deleted key never leaves",
    file: CHAINS,
    search: "    if (value === NONE) return -1;",
    replace: "    if (value === NONE) return 0;",
  },
  {
    name: "eager-collect-below-visible",
    description: "a write's own compaction walks one version too far and frees the one visible at the floor",
    file: CHAINS,
    search: "    while (visible !== NONE && table.revision(visible) > floor) {",
    replace: "    while (visible !== NONE && table.revision(visible) >= floor) {",
  },
  {
    name: "read-at-revision-off-by-one",
    description: "a read at a revision takes the version written after it when the chain has a ring",
    file: CHAINS,
    search: "      if (ring.revision(middle) <= revision) {",
    replace: "      if (ring.revision(middle) <= revision + 1) {",
  },
  {
    name: "restored-history-waits-for-newest",
    description:
      "a write leaves a ringed chain to the GC queue, so a restored hot key keeps its history as the floor passes it",
    file: STORE,
    search: "(chains.revision(last) <= floor || chains.hasRing(id))",
    replace: "chains.revision(last) <= floor",
  },
  {
    name: "write-compacts-ring-whole",
    description: "a write compacts its ringed chain whole, freeing at once all a released snapshot left",
    file: STORE,
    search: "this.collect(id, floor, WRITE_RING_DROPS);",
    replace: "this.collect(id, floor);",
  },
  // Dense revisions taken for granted: every dense test passes; only a store fed gaps shows them.
  {
    name: "apply-demands-next-revision",
    description: "apply refuses any revision but the current one + 1, as a single node's log stamps them",
    file: STORE_CORE,
    search: "      revision > this.current && Number.isSafeInteger(revision),",
    replace: "      revision === this.current + 1,",
  },
  {
    name: "history-window-from-next-revision",
    description: "retention counts the history back from the current revision + 1, not from the command's",
    file: STORE_CORE,
    search: "this.compacted = Math.max(this.compacted, revision - this.historyRevisions);",
    replace: "this.compacted = Math.max(this.compacted, this.current + 1 - this.historyRevisions);",
  },
  {
    name: "txn-get-reads-next-revision",
    description: "a transaction's get reads at the current revision + 1, in the gap before its own writes",
    file: STORE_CORE,
    search: "else reads.push(this.recordAt(op.get, revision));",
    replace: "else reads.push(this.recordAt(op.get, this.current + 1));",
  },
  // Versions written in revision order taken for granted: only writes committed late show them.
  {
    name: "late-commit-misses-tombstones",
    description: "a late commit checks a key's newest live version, not its newest: it goes under a later delete",
    file: STORE_CORE,
    search: "const newest = this.newestRevision(key);",
    replace: "const newest = this.recordAt(key, this.current).modRevision;",
  },
  {
    name: "late-commit-publishes-events",
    description: "a late commit reports its events as apply does: watchers past its revision get a change below it",
    file: STORE_CORE,
    search: "      if (!this.writeVersion(op, revision, floor, undefined)) continue;",
    replace:
      "      const events: ChangeEvent[] = [];\n      if (!this.writeVersion(op, revision, floor, events)) continue;\n      this.options.onEvents?.(revision, events);",
  },
  {
    name: "checkpoint-dump-takes-late-writes",
    description:
      "a snapshot's dump takes the late writes since it was pinned: the log after the checkpoint applies them again",
    file: STORE_CORE,
    search: "    if (left === undefined) return this.dumpChains({ ...options, revision });",
    replace: "    if (left !== null) return this.dumpChains({ ...options, revision });",
  },
  {
    name: "snapshot-holds-gc-at-its-revision",
    description:
      "an open snapshot holds GC at its own revision, not at the compacted revision it was opened at (and says so): a checkpoint loses the history it should hold, a dump the version a late write shadows",
    file: STORE_CORE,
    search: "    const compactedRevision = this.compacted;",
    replace: "    const compactedRevision = revision;",
  },
  {
    name: "group-commit-skips-sync",
    description: "a batch of many groups' writes is synced only when every one of them asked for it",
    file: GROUP_ENGINE,
    search: "const sync = batch.some((write) => write.sync);",
    replace: "const sync = batch.every((write) => write.sync);",
  },
  {
    name: "rotation-leaves-unsynced-tail",
    description: "a rotation starts the next segment without syncing the end of the current one",
    file: GROUP_ENGINE,
    search: "    if (this.unsynced) await this.syncSegment();\n",
    replace: "",
  },
  {
    name: "failed-sync-goes-on",
    description:
      "a Raft log whose sync failed takes the next write, which the pages the kernel dropped leave behind a hole",
    file: DURABLE_LOG,
    search: "    breaks(error);\n    throw error;",
    replace: "    throw error;",
  },
  {
    name: "rotation-forgets-snapshots",
    description: "a rotation restates the groups' hard states but not their snapshots",
    file: GROUP_LOG,
    search: "if (snapshot.index > 0) records.push(",
    replace: "if (snapshot.index < 0) records.push(",
  },
  {
    name: "segments-removed-past-a-needed-one",
    description: "segments no group needs are removed even after one still needed, the segment of a removal among them",
    file: GROUP_SEGMENTS,
    search: "      if (needed) break;",
    replace: "      if (needed) continue;",
  },
  {
    name: "replay-keeps-removed-group",
    description: "replay takes a group's removal record for its segments' bookkeeping only, and keeps the group",
    file: GROUP_REPLAY,
    search: "        replays.delete(group);\n",
    replace: "",
  },
  {
    name: "wal-cuts-overlap",
    description: "the WAL's cuts run side by side: two both remove the oldest segment and forget the next one",
    file: WAL_WRITER,
    search: "const cut = cutting.then(() => dropThrough(revision));",
    replace: "const cut = dropThrough(revision);",
  },
  {
    name: "wal-cut-takes-the-boundary",
    description: "a cut removes a segment whose successor starts one past the revision covered",
    file: WAL_WRITER,
    search: "segments[1]!.firstRevision <= revision + 1",
    replace: "segments[1]!.firstRevision <= revision + 2",
  },
  {
    name: "retired-at-its-own-term",
    description:
      "a retired replica's tombstone keeps its last term: a replica placed there again may vote a second time in it",
    file: GROUP_LOG,
    search: "const retiredTerm = retire ? this.memory.hardState().term + 1 : 0;",
    replace: "const retiredTerm = retire ? this.memory.hardState().term : 0;",
  },
  {
    name: "replay-forgets-tombstone",
    description: "a restart forgets a retired replica's tombstone: the group's next log there begins at term 0",
    file: GROUP_REPLAY,
    search: "          if (record.term > 0) {",
    replace: "          if (record.term < 0) {",
  },
  {
    name: "reused-row-keeps-its-ttl",
    description: "a version row reused without a TTL keeps the deadline its last version had",
    file: CHUNKED_ROWS,
    search: "      this.chunkCount++;\n    }\n    chunk[row & this.mask] = value;",
    replace:
      "      this.chunkCount++;\n    } else if (Number.isNaN(value)) return;\n    chunk[row & this.mask] = value;",
  },
  {
    name: "removal-hashes-another-key",
    description: "taking a key out of the index looks for it under another key's hash, leaving it findable",
    file: KEY_INDEX,
    search: "    this.byHash.delete(id, hashOf(key));",
    replace: '    this.byHash.delete(id, hashOf(key + "."));',
  },
  {
    name: "leaf-search-skips-one-unit-too-many",
    description:
      "a search within a leaf takes the fences' common prefix plus one unit as shared, so keys differing there compare equal",
    file: SORTED_LEAVES,
    search: "    const shared = upper === undefined ? 0 : commonPrefix(this.fences[l]!, upper);",
    replace: "    const shared = upper === undefined ? 0 : commonPrefix(this.fences[l]!, upper) + 1;",
  },
  {
    name: "leaf-search-trusts-the-lower-fence-alone",
    description: "a search within a leaf takes its lower fence as the prefix every key of the leaf begins with",
    file: SORTED_LEAVES,
    search: "    const shared = upper === undefined ? 0 : commonPrefix(this.fences[l]!, upper);",
    replace: "    const shared = this.fences[l]!.length;",
  },
  {
    name: "leaf-search-skips-bytes-of-wide-keys",
    description: "a comparison told of a shared prefix skips that many bytes of a wide stored key, not that many units",
    file: STORED_KEYS,
    search: "  for (let i = shared; i < common; i++) {",
    replace: "  for (let i = wide ? 2 * shared : shared; i < common; i++) {",
  },
];

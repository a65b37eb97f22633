import type { Mutant } from "./raft-mutants.ts";

/**
 * Known bugs to plant in the FLSM engine (src/storage/flsm, docs/internals/flsm.md), one at a time
 * (`npm run mutants -- --set flsm`), each judged by the engine's own tests (test/storage/flsm: the
 * model-based property tests against the memory engine, the crash tests, the table and level
 * tests, the write stall and flush Worker tests). Same rules as raft-mutants.ts: `search` occurs
 * exactly once in `file`.
 */
const FLSM = "src/storage/flsm";

export const FLSM_MUTANTS: readonly Mutant[] = [
  {
    name: "memtable-gc-drops-hiding-tombstone",
    description:
      "a memtable's GC of a key drops a tombstone at the floor even when an older run holds a version it hides",
    file: `${FLSM}/memtable.ts`,
    search: "    const keepTombstone = chains.isTombstone(visible) && olderRunsMayHold();",
    replace: "    const keepTombstone = false;",
  },
  {
    name: "compaction-keeps-no-version-at-floor",
    description: "a compaction keeps only versions above the GC floor, dropping the one a read at the floor sees",
    file: `${FLSM}/levels/retained-versions.ts`,
    search: "      if (!(bottom && entry.value === null)) yield entry;",
    replace: "      continue;",
  },
  {
    name: "compaction-drops-tombstone-above-data",
    description:
      "a compaction that is not the bottom drops a tombstone at the floor, so an older value below reappears",
    file: `${FLSM}/levels/retained-versions.ts`,
    search: "      if (!(bottom && entry.value === null)) yield entry;",
    replace: "      if (entry.value !== null) yield entry;",
  },
  {
    name: "compaction-floor-ahead-of-durable",
    description:
      "a compaction's floor ignores the manifest's compacted revision, so it drops versions a restart may read",
    file: `${FLSM}/disk-engine.ts`,
    search: "      floor: Math.min(this.store.stats().gcFloor, manifest.state.compactedRevision),",
    replace: "      floor: this.store.stats().gcFloor,",
  },
  {
    name: "guard-tables-oldest-first",
    description: "a guard's tables are kept oldest first, so a point read stops at an older version",
    file: `${FLSM}/levels/table-meta.ts`,
    search: "  return b.maxRevision - a.maxRevision || b.number - a.number;",
    replace: "  return a.maxRevision - b.maxRevision || a.number - b.number;",
  },
  {
    name: "bloom-probes-swapped",
    description: "the Bloom filter is built with its two hash halves swapped, so reads miss keys the table holds",
    file: `${FLSM}/table/bloom.ts`,
    search: "        const bit = probeBit(h1, h2, probe, m);",
    replace: "        const bit = probeBit(h2, h1, probe, m);",
  },
  {
    name: "block-cache-no-second-chance",
    description:
      "a hit on a cached block about to be overwritten leaves it there: blocks in use are evicted first in, first out",
    file: `${FLSM}/table/block-cache.ts`,
    search: "    if (ahead >= this.room / SECOND_CHANCE_SHARE) return cached;",
    replace: "    if (ahead >= 0) return cached;",
  },
  {
    name: "block-walk-on-ring-bytes",
    description: "a walk of a cached block's entries reads the ring's bytes, which the cache may overwrite mid-walk",
    file: `${FLSM}/table/block.ts`,
    search: "    const own = this.over(this.bytes.slice());",
    replace: "    const own = this.over(this.bytes);",
  },
  {
    name: "memtable-walk-newest-only",
    description: "a forward walk of the memtable gives each key's newest version only: a flush loses the history",
    file: `${FLSM}/memtable.ts`,
    search: "        for (let slot = chains.newest(id); slot !== NONE; slot = chains.older(slot))",
    replace: "        for (let slot = chains.newest(id); slot !== NONE; slot = NONE)",
  },
  {
    name: "level-run-reverse-in-key-order",
    description: "a reverse walk of a level visits its guards in key order: a backward scan comes out of order",
    file: `${FLSM}/level-run.ts`,
    search: "      const tables = guards[reverse ? guards.length - 1 - i : i]!;",
    replace: "      const tables = guards[i]!;",
  },
  {
    name: "stall-ignores-frozen-memtables",
    description: "writes are never stopped for frozen memtables waiting for their flush: memory is unbounded",
    file: `${FLSM}/disk-engine.ts`,
    search: "    if (frozen >= FROZEN_MEMTABLES_STOP) return stop(flushFailure);",
    replace: "    if (frozen > Number.MAX_SAFE_INTEGER) return stop(flushFailure);",
  },
  {
    name: "stall-waits-through-failure",
    description: "a stop whose flush failed holds writes instead of refusing them: clients wait with no answer",
    file: `${FLSM}/write-gate.ts`,
    search: "    if (backlog.failure !== undefined) return Promise.reject(refusal(backlog.failure));",
    replace: "",
  },
  {
    name: "flush-never-retried",
    description: "a failed flush is not retried on its own: a stop waits for a freeze that cannot come",
    file: `${FLSM}/flsm-store.ts`,
    search: "        this.cancelRetry = realTimers.after(FLUSH_RETRY_MS, () => {",
    replace: "        this.cancelRetry = realTimers.after(FLUSH_RETRY_MS * 1e6, () => {",
  },
  {
    name: "flush-worker-last-chunk-lost",
    description: "the flush Worker is never sent the memtable's last chunk: its table misses the last keys",
    file: `${FLSM}/flush/worker-flushes.ts`,
    search: "    if (!flush.over && !block.isEmpty) await this.send(flush, block.finish());",
    replace: "",
  },
  {
    name: "wal-groups-not-admitted",
    description: "the WAL takes its groups without asking the engine: a stop holds no write back",
    file: "src/storage/wal/wal-writer.ts",
    search: "      const wait = broken ? undefined : options.admit?.();",
    replace: "      const wait = broken ? undefined : (undefined as Promise<void> | undefined);",
  },
  {
    name: "flush-before-wal-sync",
    description: "a flush logs its table in the manifest before the WAL is synced through its revision",
    file: `${FLSM}/disk-engine.ts`,
    search: "      await (await this.options.log)?.syncWritten();",
    replace: "      void (await this.options.log)?.syncWritten();",
  },
  {
    name: "backup-tables-not-pinned",
    description: "a compaction deletes its inputs while a backup is still linking them: the backup fails",
    file: `${FLSM}/table-pins.ts`,
    search: "    if (this.counts.has(number)) this.doomed.add(number);",
    replace: "    if (this.counts.has(number) && number < 0) this.doomed.add(number);",
  },
  {
    name: "backup-links-level-0-only",
    description: "a backup links only level 0's tables, while its manifest names every level's",
    file: `${FLSM}/backup-tables.ts`,
    search: "    for (const { number, fileBytes } of captured.tables) {",
    replace: "    for (const { number, fileBytes } of captured.tables.filter((table) => table.level === 0)) {",
  },
  {
    name: "backup-temporary-left",
    description: "a backup that fails leaves its temporary directory behind",
    file: "src/storage/backup/backup-dir.ts",
    search: "    if (written !== undefined) await fs.removeTree(written).catch(() => {});",
    replace: "",
  },
  {
    name: "flush-all-skips-versionless-commands",
    description:
      "flushAll freezes only a memtable with entries: a Compact acknowledged after a flush is left out of the backup",
    file: `${FLSM}/flsm-store.ts`,
    search: "    if (this.active.entryCount > 0 || moved) this.rotate();",
    replace: "    if (this.active.entryCount > 0) this.rotate();",
  },
  {
    name: "backup-captures-outside-the-queue",
    description:
      "a backup reads the manifest's state outside its queue: it may name an edit's tables that a failed write then removes",
    file: `${FLSM}/manifest/manifest.ts`,
    search: "    return this.exclusive(async () => read(this.current));",
    replace: "    return Promise.resolve().then(() => read(this.current));",
  },
  {
    name: "table-v1-index-read-as-v2",
    description: "a version 1 table's index is read as version 2's, so tables written before compression are refused",
    file: `${FLSM}/table/reader.ts`,
    search: "footer.version >= 2",
    replace: "true",
  },
  {
    name: "compressed-block-crc-unchecked",
    description: "a compressed block's own CRC is not checked: damage reaches zstd or the block's inner CRC, unnamed",
    file: `${FLSM}/table/block-compression.ts`,
    search: "  if (!crcHolds(stored)) throw",
    replace: "  if (false) throw",
  },
  {
    name: "compressed-block-size-unchecked",
    description:
      "a compressed block's frame is decompressed whatever size it declares: a forged frame allocates what it likes",
    file: `${FLSM}/table/block-compression.ts`,
    search: "  if (declared !== into.byteLength)",
    replace: "  if (false)",
  },
  {
    name: "compressed-block-frames-not-walked",
    description:
      "a compressed block's first frame header is trusted without walking to its end: frames after it decompress too",
    file: `${FLSM}/table/block-compression.ts`,
    search: "  return at + checksumBytes === frame.byteLength ? size : undefined;",
    replace: "  return size;",
  },
  {
    name: "index-raw-size-unbounded",
    description:
      "a block index's raw size past 2^31 is kept, wrapped in an Int32Array, and moves the cache's head back",
    file: `${FLSM}/table/block-index.ts`,
    search: "      if (size > BLOCK_BYTES_MAX || rawSize > BLOCK_BYTES_MAX)",
    replace: "      if (false)",
  },
  {
    name: "tables-memory-not-charged-to-the-cache",
    description:
      "a flush or compaction installs tables without their indexes and filters taking the block cache's room",
    file: `${FLSM}/disk-levels.ts`,
    search:
      "    this.set = next;\n    // The tables' indexes and filters take the block cache's room: together they keep to its bytes.\n    this.cache.reserve(this.memoryBytes);",
    replace: "    this.set = next;",
  },
  {
    name: "block-cache-writes-past-its-room",
    description: "the block cache's head goes past a room shrunk by what is reserved, into segments let go",
    file: `${FLSM}/table/block-cache.ts`,
    search:
      "      const segmentEnd = Math.min(this.room, (Math.floor(at / this.segmentBytes) + 1) * this.segmentBytes);",
    replace:
      "      const segmentEnd = Math.min(this.capacityBytes, (Math.floor(at / this.segmentBytes) + 1) * this.segmentBytes);",
  },
  {
    name: "block-cache-keeps-blocks-too-large-for-a-shrunk-room",
    description: "a room shrunk by what is reserved keeps blocks larger than a cache of that room would take",
    file: `${FLSM}/table/block-cache.ts`,
    search:
      "      if ((cached.start % this.capacityBytes) + size > room || size > room / LARGEST_SHARE) this.drop(cached);",
    replace: "      if ((cached.start % this.capacityBytes) + size > room) this.drop(cached);",
  },
  {
    name: "block-cache-order-keeps-let-go-segments",
    description:
      "blocks dropped with the segments let go stay in the ring's order, which keeps those segments in memory",
    file: `${FLSM}/table/block-cache.ts`,
    search: "    this.order = this.order.slice(this.first).filter((cached) => !cached.gone);\n    this.first = 0;\n",
    replace: "",
  },
  {
    name: "block-cache-second-chance-measured-in-capacity",
    description:
      "a hit's distance from being overwritten is measured round the whole capacity, not the room blocks take",
    file: `${FLSM}/table/block-cache.ts`,
    search: "    const ahead = offset >= at ? offset - at : Math.max(0, this.room - at) + offset;",
    replace: "    const ahead = offset >= at ? offset - at : this.capacityBytes - at + offset;",
  },
];

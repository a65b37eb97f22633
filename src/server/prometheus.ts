/**
 * Prometheus text exposition format (version 0.0.4): pure formatting, no I/O.
 * https://prometheus.io/docs/instrumenting/exposition_formats/
 */
import type { GossipCounters, Member } from "../cluster/gossip/index.ts";
import type { Metrics } from "../gen/homekv_service.ts";
import type { FlsmEngineStats } from "../storage/flsm/disk-engine.ts";
import { LATENCY_BUCKETS_S, type RpcStats } from "./rpc-stats.ts";

export const PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8";

export type MetricType = "counter" | "gauge" | "histogram";

export interface Sample {
  /** Appended to the family name (histograms: "_bucket", "_sum", "_count"). */
  suffix?: string;
  labels?: Record<string, string>;
  value: number;
}

export interface MetricFamily {
  name: string;
  help: string;
  type: MetricType;
  samples: Sample[];
}

/** Escapes a label value: backslash, double quote and line feed. */
export function escapeLabelValue(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
}

/** Escapes HELP text: backslash and line feed. */
export function escapeHelp(text: string): string {
  return text.replace(/\\/g, "\\\\").replace(/\n/g, "\\n");
}

export function formatValue(value: number): string {
  if (Number.isNaN(value)) return "NaN";
  if (value === Infinity) return "+Inf";
  if (value === -Infinity) return "-Inf";
  return String(value);
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** The exposition of the given families, in order; ends with a line feed. */
export function formatExposition(families: readonly MetricFamily[]): string {
  const lines: string[] = [];
  for (const family of families) {
    if (!NAME.test(family.name)) throw new Error(`invalid metric name ${JSON.stringify(family.name)}`);
    lines.push(`# HELP ${family.name} ${escapeHelp(family.help)}`, `# TYPE ${family.name} ${family.type}`);
    for (const sample of family.samples) {
      const entries = Object.entries(sample.labels ?? {});
      for (const [label] of entries)
        if (!LABEL.test(label)) throw new Error(`invalid label name ${JSON.stringify(label)}`);
      const labels =
        entries.length === 0 ? "" : `{${entries.map(([k, v]) => `${k}="${escapeLabelValue(v)}"`).join(",")}}`;
      lines.push(`${family.name}${sample.suffix ?? ""}${labels} ${formatValue(sample.value)}`);
    }
  }
  return lines.length === 0 ? "" : `${lines.join("\n")}\n`;
}

const gauge = (name: string, help: string, value: number): MetricFamily => ({
  name,
  help,
  type: "gauge",
  samples: [{ value }],
});
const counter = (name: string, help: string, value: number): MetricFamily => ({
  name,
  help,
  type: "counter",
  samples: [{ value }],
});

/** The Metrics RPC's answer as metric families (one mapping, shared with the RPC through `metrics()`). */
export function storeFamilies(m: Metrics): MetricFamily[] {
  return [
    gauge("homekv_keys", "Live keys at the latest revision.", m.keysCount),
    gauge("homekv_value_bytes", "Bytes of the live values at the latest revision.", m.valuesSizeInBytes),
    gauge("homekv_revision", "The latest committed revision.", m.revision),
    gauge("homekv_compacted_revision", "Revisions at or below this one are compacted away.", m.compactedRevision),
    gauge("homekv_gc_floor_revision", "The oldest revision GC must keep readable.", m.gcFloorRevision),
    gauge(
      "homekv_versions_retained",
      "Versions of values kept in memory, the live ones and history.",
      m.versionsRetained,
    ),
    gauge("homekv_open_snapshots", "Snapshots open now (scans, cursors).", m.openSnapshots),
    counter("homekv_gc_runs_total", "Garbage collection runs.", m.gcRuns),
    counter("homekv_gc_versions_collected_total", "Versions garbage collection removed.", m.gcVersionsCollected),
    gauge("homekv_persistent", "1 when the data is on disk (a WAL), 0 when in memory only.", m.persistent ? 1 : 0),
    gauge("homekv_wal_bytes", "Bytes in the write-ahead log.", m.walBytes),
    gauge("homekv_wal_segments", "Write-ahead log segment files.", m.walSegments),
    counter("homekv_wal_fsyncs_total", "fsync calls on the write-ahead log.", m.walFsyncs),
    counter("homekv_wal_records_total", "Records written to the write-ahead log.", m.walRecords),
    gauge("homekv_last_checkpoint_revision", "Revision of the last checkpoint (0: none).", m.lastCheckpointRevision),
    gauge(
      "homekv_last_checkpoint_timestamp_seconds",
      "Unix time the last checkpoint completed (0: none).",
      m.lastCheckpointUnixMs / 1000,
    ),
    gauge("homekv_last_checkpoint_bytes", "Size of the last checkpoint.", m.lastCheckpointBytes),
    gauge("homekv_recovery_seconds", "Time recovery took at startup.", m.recoveryMs / 1000),
    gauge("homekv_watchers", "Watch streams open now.", m.watchers),
    {
      name: "homekv_storage_engine",
      help: "1, labelled with the engine that keeps the versions (--engine).",
      type: "gauge",
      samples: [{ labels: { engine: m.storageEngine }, value: 1 }],
    },
    gauge("homekv_memtable_bytes", "Heap bytes of the memtable being written (flsm engine).", m.memtableBytes),
    gauge("homekv_frozen_memtables", "Frozen memtables waiting for their flush (flsm engine).", m.frozenMemtables),
    counter("homekv_memtable_flushes_total", "Memtables flushed (flsm engine).", m.memtableFlushes),
    counter(
      "homekv_commands_served_total",
      "Key-value commands (Get, Set, Del, Scan, Txn, Compact, Watch) that ended OK.",
      m.cmdsCount,
    ),
    counter("homekv_commands_rejected_total", "Key-value commands that ended with an error status.", m.cmdsRejected),
    gauge("homekv_uptime_seconds", "Time since the server started.", m.uptimeMs / 1000),
  ];
}

/** A replicated member's Raft group, as it sees it; nothing for a server of one. */
export function raftFamilies(m: Metrics): MetricFamily[] {
  if (!m.replicated) return [];
  return [
    gauge("homekv_raft_term", "The Raft term this member is in.", m.raftTerm),
    gauge("homekv_raft_is_leader", "1 when this member leads its Raft group.", m.raftRole === "leader" ? 1 : 0),
    gauge("homekv_raft_has_leader", "1 when this member knows a leader.", m.raftLeader === "" ? 0 : 1),
    gauge("homekv_raft_commit_index", "The Raft log's commit index as this member knows it.", m.raftCommitIndex),
    gauge("homekv_raft_applied_index", "The Raft log index this member has applied.", m.raftAppliedIndex),
    counter("homekv_raft_proposals_committed_total", "Writes proposed here and applied.", m.raftProposalsCommitted),
    counter(
      "homekv_raft_proposals_dropped_total",
      "Writes proposed here that another leader's entry replaced (not applied).",
      m.raftProposalsDropped,
    ),
    counter("homekv_raft_leader_changes_total", "Changes of leader this member has seen.", m.raftLeaderChanges),
    gauge(
      "homekv_raft_peer_round_trip_seconds",
      "On the leader: the slowest follower's latest heartbeat round trip.",
      m.raftPeerRoundTripUs / 1e6,
    ),
    counter("homekv_raft_snapshots_sent_total", "Snapshots streamed to a follower and delivered.", m.raftSnapshotsSent),
    counter(
      "homekv_raft_snapshots_failed_total",
      "Snapshots streamed to a follower that failed.",
      m.raftSnapshotsFailed,
    ),
  ];
}

/** The flsm engine's own figures (tables per level, bytes written, write amplification, cache, stalls); nothing on the memory engine. */
export function flsmFamilies(stats: FlsmEngineStats | undefined): MetricFamily[] {
  if (stats === undefined) return [];
  const byLevel = (
    name: string,
    help: string,
    value: (level: FlsmEngineStats["levels"][number]) => number,
    type: "gauge" | "counter" = "gauge",
  ) => ({
    name,
    help,
    type,
    samples: stats.levels.map((level) => ({ labels: { level: String(level.level) }, value: value(level) })),
  });
  const { blockCache, writeGate } = stats;
  const lookups = blockCache.hits + blockCache.misses;
  return [
    byLevel("homekv_flsm_tables", "Tables per level (flsm engine).", (level) => level.tables),
    byLevel("homekv_flsm_table_bytes", "Bytes of tables per level (flsm engine).", (level) => level.bytes),
    byLevel("homekv_flsm_guards", "Guards per level (flsm engine).", (level) => level.guards),
    byLevel(
      "homekv_flsm_level_bytes_written_total",
      "Table bytes flushes (level 0) and compactions wrote into each level.",
      (level) => level.bytesWritten,
      "counter",
    ),
    counter("homekv_flsm_flush_bytes_total", "Table bytes written by memtable flushes.", stats.flushBytes),
    counter("homekv_flsm_flush_failures_total", "Memtable flushes that failed (each is retried).", stats.flushFailures),
    counter("homekv_flsm_compactions_total", "Compactions installed.", stats.compactions),
    counter(
      "homekv_flsm_compaction_failures_total",
      "Compactions that failed (each is retried).",
      stats.compactionFailures,
    ),
    counter("homekv_flsm_compaction_bytes_read_total", "Table bytes compactions read.", stats.compactionBytesRead),
    counter(
      "homekv_flsm_compaction_bytes_written_total",
      "Table bytes compactions wrote.",
      stats.compactionBytesWritten,
    ),
    gauge(
      "homekv_flsm_write_amplification",
      "Table bytes written per byte of keys and values written.",
      stats.writeAmplification,
    ),
    counter("homekv_flsm_block_cache_hits_total", "Table block reads the block cache answered.", blockCache.hits),
    counter("homekv_flsm_block_cache_misses_total", "Table block reads that went to the file.", blockCache.misses),
    gauge(
      "homekv_flsm_block_cache_hit_ratio",
      "Block cache hits per lookup since the start (0 before any).",
      lookups === 0 ? 0 : blockCache.hits / lookups,
    ),
    gauge("homekv_flsm_block_cache_bytes", "Bytes of blocks the block cache holds.", blockCache.bytes),
    gauge(
      "homekv_flsm_table_memory_bytes",
      "Bytes the open tables' block indexes and Bloom filters hold in memory.",
      stats.tableMemoryBytes,
    ),
    gauge(
      "homekv_flsm_write_stopped",
      "1 while writes wait for a flush or compaction to catch up.",
      stats.backlog.stall === "stop" ? 1 : 0,
    ),
    gauge(
      "homekv_flsm_write_slowed",
      "1 while writes are slowed down (level 0 at its slowdown trigger).",
      stats.backlog.stall === "slowdown" ? 1 : 0,
    ),
    counter(
      "homekv_flsm_stopped_write_groups_total",
      "Groups of writes that waited for a stop to end.",
      writeGate.stoppedGroups,
    ),
    counter(
      "homekv_flsm_slowed_write_groups_total",
      "Groups of writes that waited a slowdown.",
      writeGate.slowedGroups,
    ),
    counter(
      "homekv_flsm_write_stopped_seconds_total",
      "Time during which writes were stopped.",
      writeGate.stoppedMs / 1000,
    ),
  ];
}

export interface ProcessMemory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
}

export function processFamilies(memory: ProcessMemory): MetricFamily[] {
  return [
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.", memory.rss),
    gauge("homekv_heap_used_bytes", "JavaScript heap in use.", memory.heapUsed),
    gauge("homekv_heap_total_bytes", "JavaScript heap reserved.", memory.heapTotal),
  ];
}

/** Per-RPC call counts by status and latency histograms. */
export function rpcFamilies(stats: RpcStats): MetricFamily[] {
  const calls: Sample[] = [];
  for (const [method, byStatus] of [...stats.calls].sort(([a], [b]) => a.localeCompare(b))) {
    for (const [code, value] of [...byStatus].sort(([a], [b]) => a.localeCompare(b)))
      calls.push({ labels: { method, code }, value });
  }
  const latency: Sample[] = [];
  for (const [method, histogram] of [...stats.latency].sort(([a], [b]) => a.localeCompare(b))) {
    let cumulative = 0;
    LATENCY_BUCKETS_S.forEach((bound, i) => {
      cumulative += histogram.buckets[i] ?? 0;
      latency.push({ suffix: "_bucket", labels: { method, le: formatValue(bound) }, value: cumulative });
    });
    latency.push({ suffix: "_bucket", labels: { method, le: "+Inf" }, value: histogram.count });
    latency.push({ suffix: "_sum", labels: { method }, value: histogram.sumSeconds });
    latency.push({ suffix: "_count", labels: { method }, value: histogram.count });
  }
  return [
    {
      name: "homekv_grpc_requests_total",
      help: "gRPC calls finished, by method and status code.",
      type: "counter",
      samples: calls,
    },
    {
      name: "homekv_grpc_request_duration_seconds",
      help: "gRPC call latency, by method.",
      type: "histogram",
      samples: latency,
    },
  ];
}

const MEMBER_STATUSES = ["alive", "suspect", "dead", "left"] as const;

/** The cluster as this node sees it: members by status, each peer's phi, and gossip traffic (with --gossip-port). */
export function clusterFamilies(members: readonly Member[], counters: GossipCounters | undefined): MetricFamily[] {
  const families: MetricFamily[] = [
    {
      name: "homekv_cluster_members",
      help: "Nodes this node knows of, itself included, by status.",
      type: "gauge",
      samples: MEMBER_STATUSES.map((status) => ({
        labels: { status },
        value: members.filter((member) => member.status === status).length,
      })),
    },
    {
      name: "homekv_cluster_peer_phi",
      help: "The phi accrual suspicion of each peer (dead from --phi-threshold).",
      type: "gauge",
      samples: members
        .filter((member) => !member.isSelf)
        .map((member) => ({ labels: { node: member.nodeId }, value: member.phi })),
    },
  ];
  if (!counters) return families;
  const dropped = Object.entries(counters.datagramsDropped).map(([reason, value]) => ({ labels: { reason }, value }));
  return [
    ...families,
    {
      name: "homekv_gossip_datagrams_total",
      help: "Gossip datagrams sent and received.",
      type: "counter",
      samples: [
        { labels: { direction: "sent" }, value: counters.datagramsSent },
        { labels: { direction: "received" }, value: counters.datagramsReceived },
      ],
    },
    {
      name: "homekv_gossip_datagrams_dropped_total",
      help: "Gossip datagrams dropped, by reason.",
      type: "counter",
      samples: dropped,
    },
  ];
}

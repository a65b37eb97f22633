import { DEFAULT_HOST, DEFAULT_PORT } from "../address.ts";
import { GOSSIP_DEFAULTS } from "../cluster/gossip/index.ts";
import { DEAD_SERVER_AFTER_DEFAULT_MS } from "../cluster/replication/autopilot.ts";
import { INITIAL_CLUSTER_STATES } from "../cluster/replication/bootstrap.ts";
import { VOTERS_DEFAULT, VOTERS_MAX } from "../cluster/replication/membership-changes.ts";
import { PARTITIONS_MAX } from "../cluster/ring/partition-of.ts";
import { DEFAULT_LIMITS, LIMIT_FLAGS, type Limits } from "../server/limits.ts";
import { DEFAULT_CLUSTER_ID, DEFAULT_CONNECTION_IDLE_TIMEOUT_MS } from "../server/server.ts";
import { DEFAULT_GRPC_SERVER, GRPC_SERVERS } from "../server/transport.ts";
import { DURABLE_DEFAULTS } from "../storage/durable-database.ts";
import {
  BLOCK_CACHE_BYTES_DEFAULT,
  BLOCK_COMPRESSIONS,
  STORE_ENGINES,
  TABLE_COMPRESSION_DEFAULT,
} from "../storage/engine.ts";
import { MEMTABLE_BYTES_DEFAULT } from "../storage/flsm/flsm-store.ts";
import { FSYNC_MODES } from "../storage/wal/wal-writer.ts";
import { LOG_FORMATS, LOG_LEVELS } from "./logger.ts";
import type { SettingSpec } from "./settings.ts";

export const DEFAULT_DATA_DIR = "./homekv-data";
export const HISTORY_REVISIONS_DEFAULT = 10_000;
const INT_MAX = 2 ** 31 - 1;
/** etcd keeps 5,000 entries behind its snapshot (its snapshot-catchup-entries). */
const RAFT_LOG_TAIL_ENTRIES_DEFAULT = 5_000;
/** As etcd's --snapshot-count: about 30 MiB of 100-byte writes held in memory at most. */
const CHECKPOINT_RAFT_ENTRIES_DEFAULT = 100_000;
const PORT = { type: "integer", min: 0, max: 65_535 } as const;
/** The largest memtable or block cache taken: past any machine's memory, yet short to write in a message. */
const ENGINE_MEMORY_BYTES_MAX = 2 ** 40;

const limitNames = Object.keys(LIMIT_FLAGS) as (keyof Limits)[];

/** The limit each setting sets, by setting name (`max-key-bytes` → keyBytesMax). */
export const LIMIT_SETTINGS: ReadonlyMap<string, keyof Limits> = new Map(
  limitNames.map((name) => [LIMIT_FLAGS[name].slice(2), name]),
);

const LIMIT_DESCRIPTIONS: Readonly<Record<keyof Limits, string>> = {
  keyBytesMax: "Longest key, in UTF-8 bytes",
  valueBytesMax: "Longest value, in bytes",
  keysPerRequestMax: "Most keys in one request",
  requestBytesMax: "Largest request message, in bytes",
  responseBytesMax: "Most key and value bytes in one response (a Scan page ends early instead)",
  watchBufferBytesMax:
    "Bytes held for all watchers together, half in flight (a stuck stream is reset), half queued (the furthest behind are ended)",
};

const limitSettings: Record<string, SettingSpec> = Object.fromEntries(
  limitNames.map((name) => [
    LIMIT_FLAGS[name].slice(2),
    {
      // Every limit in bytes takes a size (64KiB); the count of keys stays a number.
      kind: { type: name === "keysPerRequestMax" ? "integer" : "size", min: 1, max: INT_MAX },
      default: DEFAULT_LIMITS[name],
      description: LIMIT_DESCRIPTIONS[name],
    },
  ]),
);

/** Every setting of `homekv serve`: each a flag, a HOMEKV_* environment variable and a config file key. */
export const SERVE_SETTINGS = {
  host: { kind: { type: "string" }, default: DEFAULT_HOST, description: "Address to listen on" },
  port: { kind: PORT, default: DEFAULT_PORT, alias: "p", description: "Port to listen on, 0 for any free one" },
  "data-dir": { kind: { type: "string" }, description: `Where the data lives (default ${DEFAULT_DATA_DIR})` },
  "in-memory": {
    kind: { type: "boolean" },
    default: false,
    description: "Keep nothing on disk: all data is lost when the server stops",
  },
  engine: {
    kind: { type: "choice", choices: STORE_ENGINES },
    default: "memory",
    description:
      "Where the versions live: memory (all of them) or flsm (recent ones in a memtable, the rest in the fragmented LSM; needs a data dir). A data dir keeps the engine it was made with",
  },
  "memtable-bytes": {
    kind: { type: "size", min: 4096, max: ENGINE_MEMORY_BYTES_MAX },
    default: MEMTABLE_BYTES_DEFAULT,
    description:
      "With --engine flsm: memory for the memtables together (the one taking writes and two waiting for their flush, a third each)",
  },
  "block-cache-bytes": {
    kind: { type: "size", min: 0, max: ENGINE_MEMORY_BYTES_MAX },
    default: BLOCK_CACHE_BYTES_DEFAULT,
    description: "With --engine flsm: memory for the blocks of tables read from disk (0: no cache)",
  },
  "table-compression": {
    kind: { type: "choice", choices: BLOCK_COMPRESSIONS },
    default: TABLE_COMPRESSION_DEFAULT,
    description:
      "With --engine flsm: how new tables store their data blocks: zstd (where it saves an eighth) or none (faster reads and writes, more disk: 1.5x for values that compress to half). Tables already written keep theirs",
  },
  fsync: {
    kind: { type: "choice", choices: FSYNC_MODES },
    default: DURABLE_DEFAULTS.fsync,
    description: "When a write is acknowledged: always (after its fsync), everysec (fsync once a second) or never",
  },
  "history-revisions": {
    kind: { type: "integer", min: 0, max: Number.MAX_SAFE_INTEGER },
    description: `Past revisions kept readable (reads, watches and scans at a revision; default ${HISTORY_REVISIONS_DEFAULT}, unlimited with --history-duration alone)`,
  },
  "history-duration": {
    kind: { type: "duration" },
    description: "Also keep what changed in the last this long, e.g. 5m (default: off)",
  },
  "log-format": {
    kind: { type: "choice", choices: LOG_FORMATS },
    default: "human",
    description: "How log lines look; json: one JSON object per line",
  },
  "log-level": {
    kind: { type: "choice", choices: LOG_LEVELS },
    default: "info",
    description: "Log only messages at this level or above",
  },
  "wal-segment-bytes": {
    kind: { type: "size", min: 4096, max: INT_MAX },
    default: DURABLE_DEFAULTS.walSegmentBytesMax,
    description: "WAL segment file size",
  },
  "checkpoint-wal-bytes": {
    kind: { type: "size", min: 1, max: Number.MAX_SAFE_INTEGER },
    default: DURABLE_DEFAULTS.checkpointWalBytes,
    description: "Checkpoint after this many WAL bytes (in a replicated member: bytes of commands applied)",
  },
  "http-port": {
    kind: PORT,
    description: "Also serve /metrics, /healthz and /readyz over HTTP on this port, 0 for any free one (default: off)",
  },
  "tls-cert": { kind: { type: "string" }, description: "PEM certificate (chain) to serve TLS with; needs --tls-key" },
  "tls-key": { kind: { type: "string" }, description: "PEM private key of --tls-cert" },
  "tls-client-ca": {
    kind: { type: "string" },
    description: "Require client certificates signed by this PEM CA (mutual TLS)",
  },
  "auth-file": {
    kind: { type: "string" },
    description: "Require tokens: a file of `TOKEN ROLE` lines (roles: read, write, admin)",
  },
  "auth-tokens": {
    kind: { type: "string" },
    secret: true,
    description: "Tokens inline, `TOKEN:ROLE,...` (prefer --auth-file or HOMEKV_AUTH_TOKENS: flags show in ps)",
  },
  "connection-idle-timeout": {
    kind: { type: "duration" },
    default: DEFAULT_CONNECTION_IDLE_TIMEOUT_MS,
    description: "Close a client connection that has made no call for this long (half-open ones too)",
  },
  "grpc-server": {
    kind: { type: "choice", choices: GRPC_SERVERS },
    default: DEFAULT_GRPC_SERVER,
    description: "Which gRPC server serves the calls: native (HomeKV's own HTTP/2) or grpc-js",
  },
  "node-id": { kind: { type: "string" }, description: "This node's name in the cluster (default: the host name)" },
  "cluster-id": {
    kind: { type: "string" },
    default: DEFAULT_CLUSTER_ID,
    description: "Gossip only with nodes of this cluster",
  },
  "peer-port": {
    kind: PORT,
    description:
      "Replicate with Raft: take peers' connections on this port of --host (needs --initial-cluster or --bootstrap-expect, and a data dir)",
  },
  "initial-cluster": {
    kind: { type: "string" },
    description:
      "The members of a new replicated cluster, NAME=HOST:PEERPORT[,...]; every member gets the same list (any order)",
  },
  "initial-cluster-state": {
    kind: { type: "choice", choices: INITIAL_CLUSTER_STATES },
    default: "new",
    description:
      "new: found the cluster with the members of --initial-cluster; existing: join a running one and wait for `homekv cluster add` (read at the first start only)",
  },
  "bootstrap-expect": {
    kind: { type: "integer", min: 1, max: VOTERS_MAX },
    description:
      "Found a replicated cluster without --initial-cluster: wait until gossip shows this many servers started with the same number, then they found it together; later servers join it as learners (needs --peer-port and --gossip-port)",
  },
  autopilot: {
    kind: { type: "boolean" },
    default: true,
    description:
      "The leader replaces a voter that gossip has seen dead for --dead-server-after (--no-autopilot: never)",
  },
  "dead-server-after": {
    kind: { type: "duration" },
    default: DEAD_SERVER_AFTER_DEFAULT_MS,
    description: "How long gossip must have seen a voter dead before autopilot removes it, like 5m",
  },
  voters: {
    kind: { type: "integer", min: 1, max: VOTERS_MAX },
    default: VOTERS_DEFAULT,
    description: "Learners that have caught up are made voters while the cluster has fewer voters than this",
  },
  partitions: {
    kind: { type: "integer", min: 1, max: PARTITIONS_MAX },
    default: 1,
    description:
      "Split the keys into this many partitions, each its own Raft group placed on --replicas of the members (1: one group holds everything); fixed when the cluster is created",
  },
  replicas: {
    kind: { type: "integer", min: 1, max: VOTERS_MAX },
    default: 3,
    description: "Copies of each partition, on distinct members (with --partitions above 1)",
  },
  "cluster-token": {
    kind: { type: "string" },
    secret: true,
    description:
      "A secret every member of the cluster shares: peers prove they hold it (prefer HOMEKV_CLUSTER_TOKEN: flags show in ps)",
  },
  "raft-tick": {
    kind: { type: "duration" },
    default: 100,
    description: "Raft's heartbeat interval; an election starts after 10 to 20 of them without a leader",
  },
  "raft-log-tail-entries": {
    kind: { type: "integer", min: 0, max: INT_MAX },
    default: RAFT_LOG_TAIL_ENTRIES_DEFAULT,
    description:
      "Raft log entries a replicated member keeps behind its newest checkpoint, so that a follower a little behind gets entries rather than the whole snapshot (a partitioned node: each partition this ÷ --partitions)",
  },
  "checkpoint-raft-entries": {
    kind: { type: "integer", min: 1, max: INT_MAX },
    default: CHECKPOINT_RAFT_ENTRIES_DEFAULT,
    description:
      "A replicated member checkpoints, and drops its Raft log up to the tail, after this many entries (or --checkpoint-wal-bytes of commands) since the last checkpoint: the log is kept in memory back to it (a partitioned node: each partition after this ÷ --partitions)",
  },
  "gossip-port": {
    kind: PORT,
    description:
      "Join a cluster: gossip over UDP on this port of --host, 0 for any free one (default: off, a cluster of one)",
  },
  join: {
    kind: { type: "string" },
    description: "Gossip addresses to join through, host:port[,host:port...] (needs --gossip-port)",
  },
  "gossip-interval": {
    kind: { type: "duration" },
    default: GOSSIP_DEFAULTS.intervalMs,
    description: "Time between gossip rounds, like 500ms or 1s (a bare number is seconds)",
  },
  "phi-threshold": {
    kind: { type: "integer", min: 1, max: 64 },
    default: GOSSIP_DEFAULTS.phiThreshold,
    description: "phi from which a silent peer is dead",
  },
  ...limitSettings,
} satisfies Record<string, SettingSpec>;

import type { InitialClusterState } from "../cluster/replication/bootstrap.ts";
import type { AuthTokens } from "../server/auth.ts";
import type { Limits } from "../server/limits.ts";
import type { ServerTls } from "../server/tls.ts";
import type { GrpcServerKind } from "../server/transport.ts";
import type { StoreEngine } from "../storage/engine.ts";
import type { FsyncMode } from "../storage/wal/wal-writer.ts";

/**
 * Everything a node is started with (`homekv serve` resolves it from flags, HOMEKV_* variables and
 * a config file: src/cli/resolve-serve-config.ts). Plain data, every default already applied.
 */
export interface ServeConfig {
  /** Where gRPC listens (and gossip, when on). */
  host: string;
  /** 0: any free port. */
  port: number;
  /** The /metrics, /healthz and /readyz endpoint's port; undefined: off. */
  httpPort: number | undefined;
  storage: StorageConfig;
  history: HistoryConfig;
  limits: Limits;
  /** Undefined: plaintext. */
  tls: ServerTls | undefined;
  /** Undefined: every call allowed. */
  auth: AuthTokens | undefined;
  connectionIdleTimeoutMs: number;
  /** Which gRPC server transport serves the calls. */
  grpcServer: GrpcServerKind;
  cluster: ClusterConfig;
}

/** In memory only (always the memory engine), or in a data directory with the engine chosen. */
export type StorageConfig =
  | { kind: "memory" }
  | {
      kind: "disk";
      dir: string;
      engine: StoreEngine;
      fsync: FsyncMode;
      walSegmentBytesMax: number;
      checkpointWalBytes: number;
    };

export interface HistoryConfig {
  /** Past revisions kept readable; Infinity: no bound by count. */
  revisions: number;
  /** Also keep what changed this recently; undefined: no time-based retention. */
  durationMs: number | undefined;
}

export interface ClusterConfig {
  nodeId: string;
  clusterId: string;
  /** Undefined: no gossip, a cluster of one. */
  gossip: GossipConfig | undefined;
  /** Undefined: not replicated (the local WAL is the log). */
  raft: RaftConfig | undefined;
}

/** One Raft group replicating the whole store (`--peer-port`, and how the group is found). */
export interface RaftConfig {
  /** Where peers connect: a port of `host`. */
  peerPort: number;
  founding: StaticFounding | GossipFounding;
  /** Learners are promoted while the group has fewer voters than this (1 to 7). */
  voters: number;
  /** Shared by the members; undefined: peers authenticate with an empty token. */
  token: string | undefined;
  tickMs: number;
  /** Entries kept in the Raft log behind the checkpoint it is compacted to, for followers a little behind. */
  logTailEntries: number;
  /** A checkpoint (and the log compacted to it) after this many entries applied since the last. */
  checkpointEntries: number;
  /** Autopilot removes a voter gossip has seen dead this long; undefined: off (`--no-autopilot`). */
  deadServerAfterMs: number | undefined;
  /** Undefined: one group holds every key (`--partitions 1`). */
  partitions: PartitionsConfig | undefined;
}

/** `--partitions P --replicas R`: the keys split into P partitions, each a Raft group of R members. */
export interface PartitionsConfig {
  count: number;
  replicas: number;
}

/** `--initial-cluster`: the members are named. */
export interface StaticFounding {
  kind: "static";
  /** Every member, this one included: name and peer address. */
  members: { name: string; address: string }[];
  /** Found the group with `members` as its voters, or join one that runs (first start only). */
  initialState: InitialClusterState;
}

/** `--bootstrap-expect N`: gossip finds the members; the first N that see each other found the group. */
export interface GossipFounding {
  kind: "gossip";
  expect: number;
}

export interface GossipConfig {
  /** A UDP port of the node's host; 0: any free one. */
  port: number;
  /** `host:port` gossip addresses to join through; empty for the first node. */
  join: string[];
  intervalMs: number;
  phiThreshold: number;
}

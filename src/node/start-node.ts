import { formatAddress } from "../address.ts";
import { type Membership, startMembership } from "../cluster/membership.ts";
import { foundingMetadata } from "../cluster/replication/gossip-founding.ts";
import { assert } from "../errors.ts";
import { realFileSystem } from "../io/fs/real-fs.ts";
import { startHttpEndpoint } from "../server/http-endpoint.ts";
import type { RingView } from "../server/ring.ts";
import type { Scans } from "../server/scan-cursors.ts";
import { routeGrpcLogs, startServer } from "../server/server.ts";
import { createDatabase, type Database } from "../storage/database.ts";
import { openDurableDatabase } from "../storage/durable-database.ts";
import { flsmMemoryBound } from "../storage/engine.ts";
import { startHistoryCompactor } from "../storage/history-compactor.ts";
import { realTimers } from "../timers.ts";
import { refuseOtherKindsData } from "./data-dir-kind.ts";
import { type MemoryGovernor, startMemoryGovernor } from "./memory-governor.ts";
import { openPartitionedNode } from "./partitioned-node.ts";
import { openReplicatedDatabase, type ReplicatedNode } from "./replicated-database.ts";
import type { ServeConfig } from "./serve-config.ts";

/** Where a node's lines go (the CLI's logger is one). */
export interface NodeLog {
  debug(message: string): void;
  info(message: string): void;
  warn(message: string): void;
  error(message: string, error: unknown): void;
}

export interface RunningNode {
  /** The gRPC service's `host:port`. */
  readonly address: string;
  /** Undefined when the HTTP endpoint is off. */
  readonly httpAddress: string | undefined;
  /** Undefined without gossip. */
  readonly gossipAddress: string | undefined;
  /**
   * Stops everything: tells the peers this node leaves (first, so that they see it gone at once
   * rather than waiting for the failure detector), stops compacting, lets the calls in flight finish
   * and closes the store, then stops the HTTP endpoint (last: /readyz says NOT_SERVING meanwhile).
   */
  stop(): Promise<void>;
}

/**
 * Starts a HomeKV node: its store, the gRPC server, and, as configured, the HTTP endpoint, gossip
 * membership and the history compactor. What started before a part fails to start is stopped again.
 */
export async function startNode(config: ServeConfig, log: NodeLog): Promise<RunningNode> {
  // Founding through gossip (--bootstrap-expect) needs gossip before the store: gossip starts
  // first, without a gRPC address, which it publishes once the server is bound.
  const { raft } = config.cluster;
  const early =
    raft?.founding.kind === "gossip"
      ? await startGossip(
          config,
          log,
          "",
          foundingMetadata(formatAddress(config.host, raft.peerPort), raft.founding.expect),
        )
      : undefined;
  let membership: Membership | undefined = early;
  const { db, replicated, ring, scans } = await undoOnError(
    () => openDatabase(config, log, () => membership),
    async () => early?.leave(),
  );
  routeGrpcLogs((line) => log.debug(line));
  const server = await undoOnError(
    () =>
      startServer({
        host: config.host,
        port: config.port,
        limits: config.limits,
        ...(config.tls ? { tls: config.tls } : {}),
        ...(config.auth ? { auth: config.auth } : {}),
        connectionIdleTimeoutMs: config.connectionIdleTimeoutMs,
        grpcServer: config.grpcServer,
        nodeId: config.cluster.nodeId,
        clusterId: config.cluster.clusterId,
        db,
        ...(replicated ? { cluster: replicated.cluster } : {}),
        ...(ring ? { ring } : {}),
        ...(scans ? { scans } : {}),
        onBug: (error) => log.error("internal error while serving a call:", error),
      }),
    () => Promise.all([db.close(), early?.leave()]),
  );
  replicated?.serving(server.address);
  early?.publishGrpcAddress(server.address);
  const { httpPort } = config;
  const http =
    httpPort === undefined
      ? undefined
      : await undoOnError(
          () => startHttpEndpoint(server, server.host, httpPort),
          () => Promise.all([server.shutdown(), early?.leave()]),
        );
  membership ??=
    config.cluster.gossip === undefined
      ? undefined
      : await undoOnError(
          () => startGossip(config, log, server.address, {}),
          () => Promise.all([server.shutdown(), http?.stop()]),
        );
  if (membership) server.attachMembership(membership);
  const { durationMs } = config.history;
  const compactor =
    durationMs === undefined
      ? undefined
      : startHistoryCompactor(db, {
          durationMs,
          onError: (error) => log.warn(`history compaction failed: ${error}`),
        });
  const governor = startGovernor(config);
  return {
    address: server.address,
    httpAddress: http?.address,
    gossipAddress: membership?.gossipAddress,
    async stop() {
      const left = membership?.leave();
      compactor?.stop();
      governor?.stop();
      try {
        await Promise.all([left, server.shutdown()]);
      } finally {
        await http?.stop();
      }
    },
  };
}

/**
 * The store, and the hub that tells watchers of its changes. The hub is made first: the store
 * tells it every change, those replayed while recovering too.
 */
async function openDatabase(
  config: ServeConfig,
  log: NodeLog,
  gossip: () => Membership | undefined,
): Promise<{ db: Database; replicated?: Omit<ReplicatedNode, "db">; ring?: () => RingView; scans?: Scans }> {
  const { raft } = config.cluster;
  if (raft?.partitions) return openPartitionedNode(config, raft, raft.partitions, log, gossip);
  if (raft) {
    const replicated = await openReplicatedDatabase(config, raft, log, gossip);
    return { db: replicated.db, replicated };
  }
  const watch = { onBug: (error: unknown) => log.error("internal error in a watcher:", error) };
  const { storage } = config;
  if (storage.kind === "memory") return { db: createDatabase({ historyRevisions: config.history.revisions, watch }) };
  await refuseOtherKindsData(realFileSystem, storage.dir, "single");
  return {
    db: await openDurableDatabase({
      dir: storage.dir,
      engine: storage.engine,
      fsync: storage.fsync,
      historyRevisions: config.history.revisions,
      watch,
      walSegmentBytesMax: storage.walSegmentBytesMax,
      checkpointWalBytes: storage.checkpointWalBytes,
      log: (line) => log.info(line),
    }),
  };
}

/**
 * How far below the bound the governor asks the collector to run concurrently, and runs a full
 * collection: memory grows between two of its checks and while the collector runs (a load makes
 * garbage at up to some 300 MB/s).
 */
const GOVERNOR_SOFT_HEADROOM_BYTES = 96 * 1024 * 1024;
const GOVERNOR_HARD_HEADROOM_BYTES = 32 * 1024 * 1024;

/**
 * On a single server on the FLSM engine, the collections that keep the process within the engine's
 * bound (memory-governor.ts). Not on a Raft member: its store keeps frozen memtables in memory, so
 * the bound does not hold there and collections would only take time.
 */
function startGovernor(config: ServeConfig): MemoryGovernor | undefined {
  const { storage } = config;
  if (storage.kind !== "disk" || storage.engine.kind !== "flsm" || config.cluster.raft) return undefined;
  const bound = flsmMemoryBound(storage.engine);
  return startMemoryGovernor({
    softBytes: bound - GOVERNOR_SOFT_HEADROOM_BYTES,
    hardBytes: bound - GOVERNOR_HARD_HEADROOM_BYTES,
    rss: () => process.memoryUsage.rss(),
    heap: () => process.memoryUsage().heapUsed,
    collect: (full) => Bun.gc(full),
    timers: realTimers,
  });
}

/** Gossip membership as configured (the caller checked it is), publishing `grpcAddress` and `metadata`. */
function startGossip(
  config: ServeConfig,
  log: NodeLog,
  grpcAddress: string,
  metadata: Record<string, string>,
): Promise<Membership> {
  const gossip = config.cluster.gossip;
  assert(gossip !== undefined, "gossip started without --gossip-port");
  return startMembership({
    clusterId: config.cluster.clusterId,
    nodeId: config.cluster.nodeId,
    host: config.host,
    gossipPort: gossip.port,
    grpcAddress,
    metadata,
    join: gossip.join,
    intervalMs: gossip.intervalMs,
    phiThreshold: gossip.phiThreshold,
    onChange: (line) => log.info(line),
  });
}

/** Runs `start`; if it fails, runs `undo` (stopping what already started) and fails the same way. */
async function undoOnError<T>(start: () => T | Promise<T>, undo: () => Promise<unknown>): Promise<T> {
  try {
    return await start();
  } catch (error) {
    await undo();
    throw error;
  }
}

import { HomeKvError } from "../errors.ts";
import type { Empty } from "../gen/google/protobuf/empty.ts";
import {
  type BackupRequest,
  type CheckpointRequest,
  type ClusterStatusRequest,
  GetResponse,
  HomeKvServiceService,
  type MembersRequest,
  type MembersResponse,
  type Metrics,
  type RingRequest,
  type RingResponse,
  type ScanRequest,
  ScanResponse,
  TxnResponse,
  type WatchRequest,
  WatchResponse,
} from "../gen/homekv_service.ts";
import type { Database } from "../storage/database.ts";
import { recordBytes } from "../storage/ops.ts";
import { type CallContext, type HandlersOf, type MessageSink, type RpcService, serverStream, unary } from "./call.ts";
import type { ClusterControl } from "./cluster-control.ts";
import { commandCounts } from "./command-counters.ts";
import { toProtoRecord } from "./convert.ts";
import { resolveKeyRange } from "./key-range.ts";
import {
  checkCount,
  checkKeys,
  checkRecords,
  checkRequestId,
  checkResponseBytes,
  type Limits,
  overLimit,
} from "./limits.ts";
import { checkDecodedRequest, withRequestSizeCheck } from "./request-size.ts";
import { withResponsesEncodedOnce } from "./response-encoding.ts";
import { notPartitioned } from "./ring.ts";
import type { RpcStats } from "./rpc-stats.ts";
import { ScanCursors, type Scans } from "./scan-cursors.ts";
import { checkTxn } from "./txn-request.ts";

export interface ServiceContext {
  db: Database;
  limits: Limits;
  /** Calls by method and status (cmds_count, /metrics). */
  rpcStats: RpcStats;
  startedAtMs: number;
  /** Monotonic clock (uptime). */
  now: () => number;
  /** Wall clock (TTL deadlines). */
  wallNow: () => number;
  onBug: (error: unknown) => void;
  /** Serves a Watch stream; src/server/watch-stream.ts. */
  watch: (request: WatchRequest, call: CallContext, sink: MessageSink<WatchResponse>) => void;
  /** Watch streams open now (metrics). */
  watchers: () => number;
  /** The cluster as this node sees it. */
  members: () => MembersResponse;
  /** The replicated group (ClusterStatus and the changes). */
  cluster: ClusterControl;
  /** The partitions and their replicas (the Ring RPC); absent on a server that is not partitioned. */
  ring?: () => RingResponse;
  /** How Scan pages are read: across partitions on a partitioned node; else the database's cursors. */
  scans?: Scans;
}

const SCAN_LIMIT_DEFAULT = 100;
const SCAN_CURSORS_MAX = 1_024;
const SCAN_CURSOR_IDLE_MS = 60_000;

/** The HomeKvService handlers: validate, then read or write through the database. */
export function createService(ctx: ServiceContext): RpcService & { close(): void } {
  const { db, limits } = ctx;
  const cursors: Scans =
    ctx.scans ??
    new ScanCursors(db, {
      cursorsMax: SCAN_CURSORS_MAX,
      idleMs: SCAN_CURSOR_IDLE_MS,
      now: ctx.now,
    });
  /** A unary handler whose request decoded within the limits (request-size.ts marks the others). */
  const checked = <Req, Res>(handle: (request: Req) => Res | Promise<Res>) =>
    unary<Req, Res>((request) => {
      checkDecodedRequest(request, limits);
      return handle(request);
    });
  /** 0 on the wire means "the latest". */
  const at = (revision: number) => (revision === 0 ? undefined : revision);

  const handlers: HandlersOf<typeof HomeKvServiceService> = {
    get: checked(async ({ keys, revision, withTtl, serializable }) => {
      checkKeys(keys, limits);
      // One record per key asked, in order; a repeated key gets its record again, in each place.
      const read = await db.get(keys, {
        revision: at(revision),
        serializable,
        checkReadBytes: (bytes) => checkResponseBytes(bytes, limits),
      });
      const nowMs = ctx.wallNow();
      return {
        records: read.records.map((record) => toProtoRecord(record, { nowMs, withTtl })),
        revision: read.revision,
      };
    }),
    // The whole request is checked before anything is done, an empty one too.
    set: checked(async ({ records, requestId }) => {
      const ops = checkRecords(records, limits, ctx.wallNow());
      const id = checkRequestId(requestId, limits);
      if (ops.length === 0) return { succ: true, revision: db.revision };
      const { revision } = await db.write(ops, id);
      return { succ: true, revision };
    }),
    del: checked(async ({ keys, requestId }) => {
      const unique = checkKeys(keys, limits);
      const id = checkRequestId(requestId, limits);
      if (unique.length === 0) return { succ: true, revision: db.revision, deleted: 0 };
      const { revision, deleted } = await db.write(
        unique.map((key) => ({ key, value: null })),
        id,
      );
      return { succ: true, revision, deleted };
    }),
    metrics: checked((_: Empty) => ({ metrics: metrics(ctx) })),
    checkpoint: checked(async ({ serializable }: CheckpointRequest) => {
      const written = await db.checkpoint({ serializable });
      return {
        revision: written.revision,
        keys: written.entries,
        bytes: written.bytes,
        durationMs: Math.round(written.durationMs),
      };
    }),
    backup: checked(async ({ dir }: BackupRequest) => {
      const backup = await db.backup(dir);
      return {
        revision: backup.revision,
        keys: backup.keys,
        bytes: backup.bytes,
        linkedBytes: backup.linkedBytes,
        durationMs: Math.round(backup.durationMs),
      };
    }),
    scan: checked(async (request: ScanRequest) => {
      const limit = request.limit === 0 ? SCAN_LIMIT_DEFAULT : request.limit;
      checkCount(limit, limits);
      const pageSize = { limit, bytesMax: limits.responseBytesMax };
      // Later pages read the first page's revision: only the first needs the barrier.
      const range = request.continuation ? undefined : scanRange(request);
      if (range && !request.serializable) await db.readBarrier();
      const page = await (range
        ? cursors.first(range, pageSize, at(request.revision))
        : cursors.next(request.continuation, pageSize));
      // A page holds at least one record: only a single record over the limit gets here.
      checkResponseBytes(sumRecordBytes(page.records), limits);
      const nowMs = ctx.wallNow();
      return {
        records: page.records.map((record) => toProtoRecord(record, { nowMs, withTtl: true, keysOnly: page.keysOnly })),
        revision: page.revision,
        continuation: page.continuation,
      };
    }),
    txn: checked(async (request) => {
      const txn = checkTxn(request, limits, ctx.wallNow());
      // Refused before anything is read or applied: what the gets would read if it applied now.
      const result = await db.txn(txn, {
        checkReadBytes: (bytes) => checkResponseBytes(bytes, limits),
        serializable: request.serializable,
        requestId: checkRequestId(request.requestId, limits),
      });
      // Only writes committed in between can make it larger now; the commit stands, and the answer says so.
      const bytes = sumRecordBytes(result.reads);
      if (bytes > limits.responseBytesMax) {
        throw overLimit(
          limits,
          "responseBytesMax",
          `the transaction committed at revision ${result.revision}, but its reads would hold`,
          bytes,
        );
      }
      const nowMs = ctx.wallNow();
      return {
        succeeded: result.succeeded,
        revision: result.revision,
        records: result.reads.map((record) => toProtoRecord(record, { nowMs, withTtl: true })),
      };
    }),
    compact: checked(({ revision }) => db.compact(revision)),
    watch: serverStream((request, call, sink) => ctx.watch(request, call, sink)),
    members: checked((_: MembersRequest) => ctx.members()),
    clusterStatus: checked((_: ClusterStatusRequest) => ctx.cluster.status()),
    clusterAdd: checked(async ({ nodeId, peerAddress }) => ({
      status: await ctx.cluster.add(requiredName(nodeId), requiredAddress(peerAddress)),
    })),
    clusterRemove: checked(async ({ nodeId }) => ({ status: await ctx.cluster.remove(requiredName(nodeId)) })),
    clusterTransferLeader: checked(async ({ nodeId }) => ({
      status: await ctx.cluster.transferLeader(requiredName(nodeId)),
    })),
    ring: checked((_: RingRequest) => {
      if (!ctx.ring) throw notPartitioned();
      return ctx.ring();
    }),
  };
  return {
    // The answers that carry values (response-encoding.ts says why).
    definition: withResponsesEncodedOnce(withRequestSizeCheck(HomeKvServiceService, limits), {
      get: GetResponse,
      scan: ScanResponse,
      txn: TxnResponse,
      watch: WatchResponse,
    }),
    handlers,
    close: () => cursors.closeAll(),
  };

  function scanRange(request: ScanRequest) {
    const range = resolveKeyRange(request, limits, { choices: "either prefix or start/end" });
    return { ...range, reverse: request.reverse, keysOnly: request.keysOnly };
  }
}

/** What the Metrics RPC answers (also /metrics over HTTP). */
export function metrics(ctx: ServiceContext): Metrics {
  const commands = commandCounts(ctx.rpcStats);
  const stats = ctx.db.stats();
  return {
    keysCount: stats.keys,
    valuesSizeInBytes: stats.valueBytes,
    cmdsCount: commands.served,
    revision: stats.revision,
    versionsRetained: stats.versions,
    openSnapshots: stats.openSnapshots,
    gcRuns: stats.gcRuns,
    gcVersionsCollected: stats.gcVersionsCollected,
    uptimeMs: Math.max(0, Math.round(ctx.now() - ctx.startedAtMs)),
    cmdsRejected: commands.rejected,
    gcFloorRevision: stats.gcFloor,
    persistent: stats.wal !== undefined,
    walBytes: stats.wal?.bytes ?? 0,
    walSegments: stats.wal?.segments ?? 0,
    walFsyncs: stats.wal?.fsyncs ?? 0,
    walRecords: stats.wal?.entries ?? 0,
    lastCheckpointRevision: stats.lastCheckpoint?.revision ?? 0,
    lastCheckpointUnixMs: stats.lastCheckpoint?.atMs ?? 0,
    lastCheckpointBytes: stats.lastCheckpoint?.bytes ?? 0,
    recoveryMs: Math.round(stats.recoveryMs),
    compactedRevision: stats.compactedRevision,
    watchers: ctx.watchers(),
    replicated: stats.replication !== undefined,
    raftRole: stats.replication?.role ?? "",
    raftTerm: stats.replication?.term ?? 0,
    raftLeader: stats.replication?.leader ?? "",
    raftCommitIndex: stats.replication?.commitIndex ?? 0,
    raftAppliedIndex: stats.replication?.appliedIndex ?? 0,
    raftProposalsCommitted: stats.replication?.proposalsCommitted ?? 0,
    raftProposalsDropped: stats.replication?.proposalsDropped ?? 0,
    raftLeaderChanges: stats.replication?.leaderChanges ?? 0,
    raftPeerRoundTripUs: stats.replication?.peerRoundTripUs ?? 0,
    raftSnapshotsSent: stats.replication?.snapshotsSent ?? 0,
    raftSnapshotsFailed: stats.replication?.snapshotsFailed ?? 0,
    storageEngine: stats.engine.name,
    memtableBytes: stats.engine.memtableBytes,
    frozenMemtables: stats.engine.frozenMemtables,
    memtableFlushes: stats.engine.memtableFlushes,
  };
}

function sumRecordBytes(records: readonly { key: string; value: Uint8Array | undefined }[]): number {
  let bytes = 0;
  for (const record of records) bytes += recordBytes(record);
  return bytes;
}

function requiredName(nodeId: string): string {
  if (nodeId === "") throw new HomeKvError("E_INVALID", "node_id is empty: name the member");
  return nodeId;
}

function requiredAddress(peerAddress: string): string {
  if (peerAddress === "") throw new HomeKvError("E_INVALID", "peer_address is empty: give the member's host:peer-port");
  return peerAddress;
}

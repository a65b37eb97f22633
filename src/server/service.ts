import type { sendUnaryData, ServerUnaryCall } from "@grpc/grpc-js";
import type { Empty } from "../gen/google/protobuf/empty.ts";
import type { CheckpointRequest, HomeKvServiceServer, Metrics } from "../gen/homekv_service.ts";
import type { Database } from "../storage/database.ts";
import type { CommandCounters } from "./command-counters.ts";
import { checkKeys, checkRecords, type Limits } from "./limits.ts";
import { checkRequestSize } from "./request-size.ts";
import { toStatus } from "./status.ts";

export interface ServiceContext {
  db: Database;
  limits: Limits;
  counters: CommandCounters;
  startedAtMs: number;
  now: () => number;
  onBug: (error: unknown) => void;
}

/** The HomeKvService handlers: validate, then read or write through the database. */
export function createService(ctx: ServiceContext): HomeKvServiceServer {
  const { db, limits } = ctx;
  const unary =
    <Req, Res>(handle: (request: Req) => Res | Promise<Res>) =>
    (call: ServerUnaryCall<Req, Res>, callback: sendUnaryData<Res>): void => {
      // Handlers may throw synchronously (validation) or reject: both end in one status.
      Promise.resolve()
        .then(() => {
          checkRequestSize(call.request, limits);
          return handle(call.request);
        })
        .then(
          (response) => callback(null, response),
          (error: unknown) => callback(toStatus(error, ctx.onBug)),
        );
    };

  return {
    get: unary(({ keys }) => {
      // Repeated keys are answered once per request position, but looked up once.
      const unique = checkKeys(keys, limits);
      const { revision, values } = db.read(unique);
      const byKey = new Map(unique.map((key, i) => [key, values[i]]));
      return { records: keys.map((key) => ({ key, value: byKey.get(key) })), revision };
    }),
    set: unary(async ({ records }) => {
      const ops = checkRecords(records, limits);
      if (ops.length === 0) return { succ: true, revision: db.stats().revision };
      const { revision } = await db.write(ops);
      return { succ: true, revision };
    }),
    del: unary(async ({ keys }) => {
      const unique = checkKeys(keys, limits);
      if (unique.length === 0) return { succ: true, revision: db.stats().revision, deleted: 0 };
      const { revision, deleted } = await db.write(unique.map((key) => ({ key, value: null })));
      return { succ: true, revision, deleted };
    }),
    metrics: unary((_: Empty) => ({ metrics: metrics(ctx) })),
    checkpoint: unary(async (_: CheckpointRequest) => {
      const written = await db.checkpoint();
      return { revision: written.revision, keys: written.entries, bytes: written.bytes, durationMs: Math.round(written.durationMs) };
    }),
  };
}

function metrics(ctx: ServiceContext): Metrics {
  const stats = ctx.db.stats();
  return {
    keysCount: stats.keys,
    valuesSizeInBytes: stats.valueBytes,
    cmdsCount: ctx.counters.served,
    revision: stats.revision,
    versionsRetained: stats.versions,
    openSnapshots: stats.openSnapshots,
    gcRuns: stats.gcRuns,
    gcVersionsCollected: stats.gcVersionsCollected,
    uptimeMs: Math.max(0, Math.round(ctx.now() - ctx.startedAtMs)),
    cmdsRejected: ctx.counters.rejected,
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
  };
}

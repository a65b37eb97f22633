import { type CoordinatorOptions, TxnCoordinator } from "../../../src/cluster/txn/coordinator.ts";
import { partitionedDatabase } from "../../../src/node/partitioned-database.ts";
import type { DatabaseStats } from "../../../src/storage/database.ts";
import { createWatchHub } from "../../../src/storage/watch/watch-hub.ts";
import { inProcessAccess, leaderOf, startPartitions } from "../txn/partition-nodes.ts";

/** A partitioned database over three in-process nodes with `partitions` partitions (the review's rig). */
export async function startReviewDatabase(partitions = 2, options: Partial<CoordinatorOptions> = {}) {
  const { nodes, groups } = await startPartitions(partitions);
  for (let partition = 0; partition < partitions; partition++) await leaderOf(groups, partition, nodes);
  const access = inProcessAccess(nodes, groups, partitions);
  const coordinator = new TxnCoordinator({
    access,
    timestamps: (count) => nodes[0]!.timestamps.take(count),
    lockTtlMs: 5_000,
    now: () => Date.now(),
    pause: (ms) => Bun.sleep(ms),
    readTimeoutMs: 5_000,
    ...options,
  });
  const db = partitionedDatabase({
    coordinator,
    partitions: () => partitions,
    watches: createWatchHub(), // never fed: these tests watch nothing
    stats: () => ({}) as DatabaseStats,
    checkpoint: () => Promise.reject(new Error("these tests take no checkpoint")),
    backup: () => Promise.reject(new Error("these tests take no backup")),
    close: async () => {},
  });
  return { db, coordinator, nodes, groups, access };
}

export const bytes = (text: string) => new TextEncoder().encode(text);
export const text = (value: Uint8Array | undefined) =>
  value === undefined ? undefined : new TextDecoder().decode(value);

import type { TxnCoordinator } from "../cluster/txn/coordinator.ts";
import { assert } from "../errors.ts";
import type { FileSystem } from "../io/fs/file-system.ts";
import { writeBackupCheckpoint } from "../storage/backup/backup-checkpoint.ts";
import type { BackupContents } from "../storage/backup/backup-contents.ts";
import { compareKeys } from "../storage/mvcc/key-order.ts";
import type { CheckpointSnapshot, KeyChain } from "../storage/mvcc/store-types.ts";

/** What one round of the backup's scan asks of each partition: a client's page, one peer message each. */
const ROUND = { limit: 1_000, bytesMax: 1 << 20 };

/**
 * A partitioned cluster's part of a backup (backup-dir.ts's `write`), taken by the node asked: a
 * timestamp from the oracle, then every live key of every partition as of it, read through the
 * transaction coordinator and written as it is read, as a single server's checkpoint at that
 * revision.
 *
 * - **Consistent across partitions**: every key is read at the one timestamp, and a lock in the
 *   way is resolved as any read's is, so a transaction that committed before the timestamp is in
 *   the backup whole, one after it not at all — as a Get of every key at once would see them.
 * - **A single server's data directory**: served as one, or founding a replicated cluster
 *   (`homekv restore`). Not a partitioned cluster's: its partitions' logs and placement are not in it.
 * - **Each key's version at the timestamp, not its history**: the checkpoint is compacted at its
 *   revision, so a read below it is refused as compacted, as on a server compacted there. Its mod
 *   and create revisions and version are the cluster's.
 * - **A round at a time**: each round's keys go to the file before the next round is read, so the
 *   node holds one round of every partition, however large the cluster's data.
 */
export async function writePartitionedBackup(options: {
  fs: FileSystem;
  into: string;
  coordinator: Pick<TxnCoordinator, "scan" | "timestampNotBelow">;
  /** The cluster's partition count (throws while this node cannot route). */
  partitions: () => number;
  /** Keys a round of the scan asks of each partition (tests make it small, to take many rounds). */
  roundKeys?: number;
}): Promise<BackupContents> {
  const { coordinator } = options;
  const ts = await coordinator.timestampNotBelow(undefined);
  const snapshot = clusterAt(ts, (after) =>
    coordinator.scan(
      { after },
      ts,
      // Every key of the round is kept: each partition's share up to the first one cut short.
      { limit: options.roundKeys ?? ROUND.limit, bytesMax: ROUND.bytesMax, keep: Number.POSITIVE_INFINITY },
      options.partitions(),
    ),
  );
  return writeBackupCheckpoint({
    fs: options.fs,
    into: options.into,
    store: { openSnapshot: () => snapshot },
    // Each slice is a round, whatever the writer asks for.
    sliceKeysMax: Number.POSITIVE_INFINITY,
  });
}

type Round = Awaited<ReturnType<TxnCoordinator["scan"]>>;

/**
 * The cluster at `ts` as a checkpoint reads a snapshot: each slice one round's live keys (a round
 * that found none, its partitions' pages cut short by deleted keys, is followed by the next), each
 * key its version at `ts` alone; an empty slice once the scan has passed the last key. The scan's
 * own cursor goes on where the last round stopped, which may lie past the last key it kept.
 */
function clusterAt(ts: number, round: (after: string | undefined) => Promise<Round>): CheckpointSnapshot {
  let cursor: string | undefined;
  let done = false;
  return {
    revision: ts,
    compactedRevision: ts,
    async chains() {
      while (!done) {
        const page = await round(cursor);
        // Every round ends past the last: the scan moves on by the keys each partition visited.
        assert(
          page.next === undefined || cursor === undefined || compareKeys(page.next, cursor) > 0,
          () => `a backup's scan went back from ${cursor} to ${page.next}`,
        );
        cursor = page.next;
        done = cursor === undefined;
        if (page.records.length > 0) return page.records.map(chainOf);
      }
      return [];
    },
    release() {},
  };
}

function chainOf(record: Round["records"][number]): KeyChain {
  return {
    key: record.key,
    versions: [
      {
        revision: record.modRevision,
        value: record.value!,
        createRevision: record.createRevision,
        version: record.version,
        ...(record.expiresAtMs === undefined ? {} : { expiresAtMs: record.expiresAtMs }),
      },
    ],
  };
}

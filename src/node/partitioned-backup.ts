import type { TxnCoordinator } from "../cluster/txn/coordinator.ts";
import { assert } from "../errors.ts";
import type { FileSystem } from "../io/fs/file-system.ts";
import { writeBackupCheckpoint } from "../storage/backup/backup-checkpoint.ts";
import type { BackupContents } from "../storage/backup/backup-contents.ts";
import { compareKeys } from "../storage/mvcc/key-order.ts";
import { createMvccStore } from "../storage/mvcc/store.ts";
import type { KeyChain } from "../storage/mvcc/store-types.ts";

/** What one round of the backup's scan asks of each partition: a client's page, one peer message each. */
const ROUND = { limit: 1_000, bytesMax: 1 << 20 };
/** Keys the checkpoint copies per event-loop turn (as a server's checkpoints do). */
const SLICE_KEYS = 4_096;

/**
 * A partitioned cluster's part of a backup (backup-dir.ts's `write`), taken by the node asked: a
 * timestamp from the oracle, then every live key of every partition as of it, read through the
 * transaction coordinator, written as a single server's checkpoint at that revision.
 *
 * - **Consistent across partitions**: every key is read at the one timestamp, and a lock in the
 *   way is resolved as any read's is, so a transaction that committed before the timestamp is in
 *   the backup whole, one after it not at all — as a Get of every key at once would see them.
 * - **A single server's data directory**: served as one, or founding a replicated cluster
 *   (`homekv restore`). Not a partitioned cluster's: its partitions' logs and placement are not in it.
 * - **Each key's version at the timestamp, not its history**: the backup's store is compacted at its
 *   revision, so a read below it is refused as compacted, as on a server compacted there. Its mod and
 *   create revisions and version are the cluster's.
 * - **Whole in this node's memory** while it is written: a partitioned cluster keeps its data in
 *   memory, but a node holds only its share; the backup holds every partition's.
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
  const round = { ...ROUND, limit: options.roundKeys ?? ROUND.limit };
  const ts = await coordinator.timestampNotBelow(undefined);
  const chains: KeyChain[] = [];
  let after: string | undefined;
  do {
    const page = await coordinator.scan({ after }, ts, round, options.partitions());
    for (const record of page.records)
      chains.push({
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
      });
    // Every round ends past the last: the scan moves on by the keys each partition visited.
    assert(
      page.next === undefined || after === undefined || compareKeys(page.next, after) > 0,
      () => `a backup's scan went back from ${after} to ${page.next}`,
    );
    after = page.next;
  } while (after !== undefined);
  const store = createMvccStore({ historyRevisions: Number.POSITIVE_INFINITY });
  store.restore(ts, ts, chains);
  return writeBackupCheckpoint({ fs: options.fs, into: options.into, store, sliceKeysMax: SLICE_KEYS });
}

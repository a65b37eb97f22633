import type { TxnCoordinator } from "../cluster/txn/coordinator.ts";
import { HomeKvError } from "../errors.ts";
import {
  decodeScanToken,
  encodeScanToken,
  type PageSize,
  type ScanRange,
  type ScanResult,
  type Scans,
} from "../server/scan-cursors.ts";
import { type KeyRecord, recordBytes } from "../storage/ops.ts";

/**
 * Scans of a partitioned cluster: every page of one scan reads the first page's timestamp (a fresh
 * one from the oracle, or the revision asked), across every partition, merged in key order. Nothing
 * is pinned: a page's continuation names its timestamp and the key to go on after, and partitions
 * keep their whole history for now, so any page can be read again.
 */
export function partitionedScans(options: {
  coordinator: Pick<TxnCoordinator, "scan" | "timestamp">;
  partitions: () => number;
}): Scans {
  const { coordinator } = options;
  const page = async (range: ScanRange, size: PageSize, revision: number, after?: string): Promise<ScanResult> => {
    const { records, next } = await coordinator.scan(
      { start: range.start, end: range.end, reverse: range.reverse, after },
      revision,
      size.limit,
      options.partitions(),
    );
    // At most bytesMax of keys and values, and at least one record whatever its size.
    const kept: KeyRecord[] = [];
    let bytes = 0;
    for (const record of records) {
      bytes += recordBytes(record);
      if (kept.length > 0 && bytes > size.bytesMax) break;
      kept.push(record);
    }
    // Cut by bytes: go on after the last record kept. A page may also be empty and still go on (every
    // key a partition visited was deleted).
    const goOn = kept.length < records.length ? kept.at(-1)!.key : next;
    return {
      records: kept,
      ...(goOn === undefined ? {} : { next: goOn }),
      revision,
      keysOnly: range.keysOnly,
      continuation: goOn === undefined ? "" : encodeScanToken({ ...range, cursor: 0, revision, after: goOn }),
    };
  };
  return {
    async first(range, size, revision) {
      const now = await coordinator.timestamp();
      if (revision !== undefined && revision > now)
        throw new HomeKvError("E_FUTURE_REVISION", `revision ${revision} is in the future (the newest is ${now})`);
      return page(range, size, revision ?? now);
    },
    next(continuation, size) {
      const token = decodeScanToken(continuation);
      return page(token, size, token.revision, token.after);
    },
    closeAll() {},
  };
}

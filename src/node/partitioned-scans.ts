import type { TxnCoordinator } from "../cluster/txn/coordinator.ts";
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
/** Rounds over the partitions one page makes at most (a page may then end short, with a continuation). */
const PAGE_ROUNDS_MAX = 16;

export function partitionedScans(options: {
  coordinator: Pick<TxnCoordinator, "scan" | "timestampNotBelow">;
  partitions: () => number;
}): Scans {
  const { coordinator } = options;
  const page = async (range: ScanRange, size: PageSize, revision: number, after?: string): Promise<ScanResult> => {
    // Rounds over the partitions until the page holds `limit` records or `bytesMax`, or the range
    // ends: each round's answers are bounded per partition (a peer message), and a round may end
    // short of the page (a partition cut by the keys it visited), even empty.
    const kept: KeyRecord[] = [];
    let bytes = 0;
    let goOn = after;
    for (let round = 0; round < PAGE_ROUNDS_MAX; round++) {
      const { records, next } = await coordinator.scan(
        { start: range.start, end: range.end, reverse: range.reverse, after: goOn },
        revision,
        { limit: size.limit - kept.length, bytesMax: size.bytesMax - bytes },
        options.partitions(),
      );
      goOn = next;
      let cut = false;
      for (const record of records) {
        // At most bytesMax of keys and values, and at least one record whatever its size.
        if (kept.length > 0 && bytes + recordBytes(record) > size.bytesMax) {
          goOn = kept.at(-1)!.key;
          cut = true;
          break;
        }
        bytes += recordBytes(record);
        kept.push(record);
      }
      if (cut || goOn === undefined || kept.length >= size.limit) break;
    }
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
      const now = await coordinator.timestampNotBelow(revision);
      return page(range, size, revision ?? now);
    },
    async next(continuation, size) {
      // A token is the client's to send back as it likes: its revision is checked again.
      const token = decodeScanToken(continuation);
      await coordinator.timestampNotBelow(token.revision);
      return page(token, size, token.revision, token.after);
    },
    closeAll() {},
  };
}

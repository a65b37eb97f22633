import type { FileSystem } from "../../io/fs/file-system.ts";
import type { Entry } from "./entry.ts";
import type { TableMeta } from "./levels/table-meta.ts";
import { type FinishedTable, type TableOptions, TableWriter } from "./table/writer.ts";

/**
 * Entries a flush encodes between two turns of the event loop. Appends and block encoding are
 * synchronous work, and an awaited append that completes at once does not yield: without a pause
 * a 64 MiB memtable would hold the loop for the whole table.
 */
export const FLUSH_ENTRIES_PER_TURN = 2_048;

/**
 * Writes `entries` (internal-key order, at least one) as the table `path` and makes it durable:
 * the file synced and closed, then its directory synced, so that the name survives a power cut
 * before any manifest names it. Yields to the event loop every FLUSH_ENTRIES_PER_TURN entries.
 * A failure removes the file (best effort: a leftover is an orphan the next start deletes).
 */
export async function writeTableFile(
  fs: FileSystem,
  dir: string,
  path: string,
  number: number,
  entries: Iterable<Entry>,
  options: Partial<TableOptions>,
): Promise<TableMeta> {
  const writer = await TableWriter.create(fs, path, options);
  try {
    let sinceTurn = 0;
    for (const entry of entries) {
      await writer.add(entry);
      if (++sinceTurn === FLUSH_ENTRIES_PER_TURN) {
        sinceTurn = 0;
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    const finished = await writer.finish();
    await fs.syncDir(dir);
    return tableMeta(number, finished);
  } catch (error) {
    await writer.abort().catch(() => {});
    throw error;
  }
}

/** What the levels know of a finished table. */
export function tableMeta(number: number, { properties, fileBytes }: FinishedTable): TableMeta {
  return {
    number,
    sizeBytes: fileBytes,
    smallest: properties.smallestKey,
    largest: properties.largestKey,
    minRevision: properties.minRevision,
    maxRevision: properties.maxRevision,
    entries: properties.entryCount,
  };
}

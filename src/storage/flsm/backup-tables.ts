import { copyFile } from "../../io/fs/copy-file.ts";
import { errorCode, type FileSystem } from "../../io/fs/file-system.ts";
import type { BackupContents } from "../backup/backup-contents.ts";
import { tableFileName } from "./disk-levels.ts";
import type { Manifest } from "./manifest/manifest.ts";
import { switchCurrent, writeManifest } from "./manifest/manifest-files.ts";
import { encodeManifest } from "./manifest/manifest-replay.ts";
import type { TablePins } from "./table-pins.ts";

/** A backup's manifest is a fresh one: the whole state as one edit. */
const BACKUP_MANIFEST_NUMBER = 1;

/**
 * Writes into `into`, a new directory, the engine as its manifest stands: a hard link to each table
 * the manifest names (a copy when `into` is on another file system, EXDEV), then MANIFEST-1 holding
 * exactly that state as one edit, and CURRENT naming it; the directory synced last, so every link
 * is durable too. A data directory's `flsm/` written so opens like any other (openFlsmEngine).
 *
 * Why no table can go away underneath: the state is captured in the manifest's operation queue
 * (Manifest.capture), so it is a durable one (never an edit being written, which a failed write
 * would undo, deleting that edit's new tables), and its tables are pinned in the same synchronous
 * step. The engine deletes a table only after logging the edit that removes it (a compaction's
 * inputs), an edit that the queue orders after the capture, and that delete goes through the pins:
 * it waits for `release`. Tables added later are not named. So every link finds its file, while
 * flushes and compactions go on: nothing is linked or copied inside the queue, where a copy across
 * file systems (minutes, for a large store) would hold every manifest edit back and so, through
 * the memtables waiting for their flush, the writes.
 */
export async function backupTables(options: {
  fs: FileSystem;
  /** The engine's directory. */
  dir: string;
  into: string;
  manifest: Manifest;
  pins: TablePins;
}): Promise<BackupContents> {
  const { fs, dir, into, manifest, pins } = options;
  const captured = await manifest.capture((state) => {
    const numbers = state.liveFiles();
    return {
      tables: numbers.map((number) => state.table(number)!),
      revision: state.flushedRevision,
      keys: state.liveTotals.keys,
      manifest: encodeManifest(BACKUP_MANIFEST_NUMBER, state),
      release: pins.pin(numbers),
    };
  });
  try {
    await fs.mkdirp(into);
    let bytes = 0;
    let linkedBytes = 0;
    let crossDevice = false;
    for (const { number, fileBytes } of captured.tables) {
      const from = `${dir}/${tableFileName(number)}`;
      const to = `${into}/${tableFileName(number)}`;
      if (!crossDevice) {
        try {
          await fs.link(from, to);
          bytes += fileBytes;
          linkedBytes += fileBytes;
          continue;
        } catch (error) {
          if (errorCode(error) !== "EXDEV") throw error;
          crossDevice = true;
        }
      }
      bytes += await copyFile(fs, from, to);
    }
    const file = await writeManifest(fs, into, BACKUP_MANIFEST_NUMBER, captured.manifest);
    await file.close();
    // Syncs `into` after CURRENT's rename: the links and the manifest's entry with it.
    await switchCurrent(fs, into, BACKUP_MANIFEST_NUMBER);
    bytes += captured.manifest.byteLength;
    return { revision: captured.revision, keys: captured.keys, bytes, linkedBytes };
  } finally {
    await captured.release();
  }
}

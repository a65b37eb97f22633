import type { FileSystem } from "../../io/fs/file-system.ts";
import { writeCheckpoint } from "../checkpoint/checkpoint-writer.ts";
import type { CheckpointSource } from "../mvcc/store.ts";
import type { BackupContents } from "./backup-contents.ts";

/**
 * The memory engine's part of a backup (backup-dir.ts's `write`): `store` at its current revision,
 * as a single server's checkpoint in `<into>/checkpoints`, which a server started on the backup
 * loads as its store (a standalone server's, a replicated member's and a partitioned cluster's
 * backups are all written this way).
 */
export async function writeBackupCheckpoint(options: {
  fs: FileSystem;
  into: string;
  store: CheckpointSource;
  sliceKeysMax: number;
  /** Runs once the checkpoint's file is complete, before it takes its name (writeCheckpoint). */
  beforeRename?: () => Promise<void>;
}): Promise<BackupContents> {
  const { fs } = options;
  const dir = `${options.into}/checkpoints`;
  await fs.mkdirp(dir);
  const written = await writeCheckpoint({
    fs,
    dir,
    store: options.store,
    sliceKeysMax: options.sliceKeysMax,
    beforeRename: options.beforeRename,
  });
  return { revision: written.revision, keys: written.entries, bytes: written.bytes, linkedBytes: 0 };
}

import { randomBytes } from "node:crypto";
import { basename, dirname, isAbsolute, join, resolve } from "node:path";
import { describeError, HomeKvError } from "../../errors.ts";
import { diskError } from "../../io/fs/disk-error.ts";
import type { FileSystem } from "../../io/fs/file-system.ts";
import { claimDataDirEngine } from "../data-dir-engine.ts";
import type { StoreEngineName } from "../engine.ts";
import type { BackupContents } from "./backup-contents.ts";

export interface BackupInfo extends BackupContents {
  durationMs: number;
}

/**
 * Takes backups of a data directory, one at a time: a second asked for while one runs is refused
 * (E_PRECONDITION, naming the running one) rather than queued. A backup reads the whole store (the
 * memory engine writes all of it again); two at once would each take twice as long and hold the
 * disk from the server's writes meanwhile, and a queued call would wait without a word for minutes,
 * past its caller's deadline, to start a backup nobody waits for any more.
 *
 * `write` fills a new directory with the engine's part of the backup (its checkpoint, or its tables
 * and manifest), every file synced and every directory it made synced.
 */
export function createBackups(options: {
  fs: FileSystem;
  /** The server's data directory: a backup never goes inside it. */
  dataDir: string;
  engine: StoreEngineName;
  write: (into: string) => Promise<BackupContents>;
  /** A line for the operator per backup, done or failed. */
  log: (line: string) => void;
}): { backup(target: string): Promise<BackupInfo>; settled(): Promise<void> } {
  let running: { target: string; startedAt: number; done: Promise<unknown> } | undefined;
  return {
    async backup(target) {
      if (running) {
        const refusal = new HomeKvError(
          "E_PRECONDITION",
          `a backup to ${running.target} is under way (for ${Math.round((performance.now() - running.startedAt) / 1_000)} s): one runs at a time, ask again once it is done`,
        );
        options.log(`backup to ${target} refused: ${refusal.message}`);
        throw refusal;
      }
      const startedAt = performance.now();
      const done = writeBackupDir({ ...options, target });
      running = { target, startedAt, done: done.catch(() => {}) };
      try {
        const backup = { ...(await done), durationMs: performance.now() - startedAt };
        options.log(
          `backup to ${target} at revision ${backup.revision}: ${backup.keys} keys, ${backup.bytes} bytes (${backup.linkedBytes} of them hard links) in ${backup.durationMs.toFixed(0)} ms`,
        );
        return backup;
      } catch (error) {
        options.log(`backup to ${target} refused or failed: ${describeError(error)}`);
        throw error;
      } finally {
        running = undefined;
      }
    },
    async settled() {
      await running?.done;
    },
  };
}

/**
 * Writes a complete data directory at `target`, which must not exist (its parent must), that a
 * server started on it (`--data-dir`, the same `--engine`) recovers like any restart:
 *
 *   <target>.tmp-<8 hex>/        written here first, beside the target, on the same file system
 *     ENGINE                     the engine's name (data-dir-engine.ts)
 *     checkpoints/<rev>.ckpt     the memory engine's state
 *     flsm/                      the FLSM engine's: CURRENT, MANIFEST-1, <n>.sst (hard links)
 *     wal/                       empty: the backup's state is all in its checkpoint or tables
 *
 * then, complete and synced (its files, then the directory), renamed to `target`, and the parent
 * synced. So a backup is either whole under its name or not there: a failure removes what it wrote
 * (the backup too, when the parent's sync fails after the rename); a crash may leave the temporary,
 * never named like a backup, which nothing reads.
 */
async function writeBackupDir(options: {
  fs: FileSystem;
  target: string;
  dataDir: string;
  engine: StoreEngineName;
  write: (into: string) => Promise<BackupContents>;
}): Promise<BackupContents> {
  const { fs, engine } = options;
  const target = checkTarget(options.target, options.dataDir);
  const parent = dirname(target);
  /** What a failure removes: the temporary, then the backup until its name is durable. */
  let written: string | undefined;
  try {
    await refuseExisting(fs, target);
    if (!(await fs.exists(parent)))
      throw new HomeKvError(
        "E_PRECONDITION",
        `cannot back up to ${target}: its parent directory ${parent} does not exist`,
      );
    // Again with symbolic links followed: a link to the data directory (or into it) passes the
    // check on the path as written, and a backup written there is then files the server owns.
    refuseInside(join(await fs.realpath(parent), basename(target)), await fs.realpath(options.dataDir));
    const temporary = `${target}.tmp-${randomBytes(4).toString("hex")}`;
    written = temporary;
    await fs.mkdirp(temporary);
    await claimDataDirEngine(fs, temporary, engine);
    await fs.mkdirp(`${temporary}/wal`);
    const contents = await options.write(temporary);
    await fs.syncDir(temporary);
    // Checked again: a rename onto an empty directory made meanwhile would replace it.
    await refuseExisting(fs, target);
    await fs.rename(temporary, target);
    written = target;
    await fs.syncDir(parent);
    return contents;
  } catch (error) {
    if (written !== undefined) await fs.removeTree(written).catch(() => {});
    throw error instanceof HomeKvError ? error : diskError(`the backup to ${target} failed`, error);
  }
}

/** The target as an absolute path without `..` or a trailing slash; refused when it cannot be one. */
function checkTarget(target: string, dataDir: string): string {
  if (target === "") throw new HomeKvError("E_INVALID", "a backup needs a directory to be written to");
  if (!isAbsolute(target))
    throw new HomeKvError(
      "E_INVALID",
      `the backup directory ${JSON.stringify(target)} is not an absolute path: it is a path on the server's machine`,
    );
  const resolved = resolve(target);
  refuseInside(resolved, resolve(dataDir));
  return resolved;
}

function refuseInside(target: string, dataDir: string): void {
  if (target === dataDir || target.startsWith(`${dataDir}/`))
    throw new HomeKvError(
      "E_INVALID",
      `cannot back up to ${target}: it is inside the server's data directory ${dataDir}; name a directory elsewhere`,
    );
}

async function refuseExisting(fs: FileSystem, target: string): Promise<void> {
  if (await fs.exists(target))
    throw new HomeKvError(
      "E_PRECONDITION",
      `cannot back up to ${target}: it already exists (a backup is only written to a new directory)`,
    );
}

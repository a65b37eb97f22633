import { HomeKvError } from "../errors.ts";
import { errorCode, type FileSystem } from "../io/fs/file-system.ts";

export interface DataDirLock {
  release(): Promise<void>;
}

/**
 * Locks a data directory for one process: a LOCK file created exclusively, holding the owner's
 * pid. A LOCK left by a process that no longer runs (killed with SIGKILL, say) is taken over.
 * Bun has no flock(2); the pid check is what Redis-style pid files do, and the exclusive create
 * makes two servers starting at once safe.
 */
export async function lockDataDir(options: {
  fs: FileSystem;
  dir: string;
  pid: number;
  isAlive: (pid: number) => boolean;
}): Promise<DataDirLock> {
  const { fs, dir, pid } = options;
  const path = `${dir}/LOCK`;
  const content = new TextEncoder().encode(`${pid}\n`);
  for (let attempt = 0; ; attempt++) {
    try {
      await fs.createExclusive(path, content);
      await fs.syncDir(dir);
      return { release: () => fs.remove(path) };
    } catch (error) {
      if (errorCode(error) !== "EEXIST" || attempt > 0) throw error;
    }
    const holder = Number.parseInt(new TextDecoder().decode(await fs.readFile(path)), 10);
    if (Number.isInteger(holder) && holder !== pid && options.isAlive(holder)) {
      throw new HomeKvError("E_LOCKED", `data directory ${dir} is in use by another HomeKV server (pid ${holder})`);
    }
    await fs.remove(path); // stale: its owner is gone
  }
}

/** Whether a process with this pid exists (signal 0 checks without sending anything). */
export function processIsAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return errorCode(error) === "EPERM";
  }
}

/**
 * All file I/O of the storage layer goes through this interface (DESIGN.md, convention 6): a real
 * implementation on node:fs, and an in-memory one that injects faults (ENOSPC, EIO) and simulates a
 * crash by dropping everything not yet synced, so that crash and corruption cases are cheap to test.
 *
 * Paths are plain strings joined with "/". Errors are Node-style, with a `code` ("ENOENT", ...).
 */
export interface FileSystem {
  mkdirp(dir: string): Promise<void>;
  /** Names of the entries in `dir` (not paths), in no particular order. */
  list(dir: string): Promise<string[]>;
  readFile(path: string): Promise<Uint8Array>;
  /** Opens `path` to read it in pieces: recovery reads files it must not hold whole (checkpoints, WAL segments). */
  openRead(path: string): Promise<ReadFile>;
  /** Opens for appending, creating the file when missing. */
  openAppend(path: string): Promise<AppendFile>;
  /** Creates `path` with `data`, failing with EEXIST when it already exists (atomic). */
  createExclusive(path: string, data: Uint8Array): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  /**
   * A second name for the file at `from` (a hard link; EEXIST when `to` exists): a checkpoint names
   * immutable files without copying them. Durable once the directory of `to` is synced.
   */
  link(from: string, to: string): Promise<void>;
  /** Removes a file; nothing when it is missing. */
  remove(path: string): Promise<void>;
  /** Whether anything (a file, a directory) is at `path`. */
  exists(path: string): Promise<boolean>;
  /** Removes `path` and, when it is a directory, everything under it (rm -rf); nothing when missing. */
  removeTree(path: string): Promise<void>;
  /** The existing `path` with every symbolic link on its way followed (realpath(3)). */
  realpath(path: string): Promise<string>;
  /** Makes the directory's entries (creations, renames, removals) durable. */
  syncDir(dir: string): Promise<void>;
}

export interface AppendFile {
  /** Bytes in the file, as this handle has written them. */
  readonly size: number;
  append(data: Uint8Array): Promise<void>;
  /** Makes every appended byte durable (fdatasync). */
  sync(): Promise<void>;
  /** Cuts the file back to `size` bytes (undoes a failed append). */
  truncate(size: number): Promise<void>;
  close(): Promise<void>;
}

/**
 * A file open for reading. Reads are synchronous: a checkpoint is decoded straight into the store
 * by its synchronous `restore` (no read may see a half-built store), pulling a piece of the file at
 * a time; a read from the page cache takes microseconds.
 */
export interface ReadFile {
  /** Bytes in the file when it was opened. */
  readonly size: number;
  /** Copies the file's bytes from `position` into `into`; returns how many (fewer only at the end of the file). */
  readAt(into: Uint8Array, position: number): number;
  close(): void;
}

export function errorCode(error: unknown): string | undefined {
  return typeof error === "object" && error !== null && "code" in error ? String(error.code) : undefined;
}

/** The names in `dir`, or none when it does not exist (a part of a data directory not made yet). */
export async function listIfExists(fs: FileSystem, dir: string): Promise<string[]> {
  try {
    return await fs.list(dir);
  } catch (error) {
    if (errorCode(error) === "ENOENT") return [];
    throw error;
  }
}

import { closeSync, constants, fstatSync, openSync, readSync, writeSync } from "node:fs";
import { link, lstat, mkdir, open, readdir, readFile, realpath, rename, rm } from "node:fs/promises";
import { type AppendFile, errorCode, type FileSystem, type ReadFile } from "./file-system.ts";

/**
 * The real file system. Calls run off the event loop (the thread pool), except `append`: a write
 * into the page cache takes microseconds, while a round trip through the pool waits for this thread
 * to come back to its completion — under load, 1.5 ms per WAL group, measured, the disk idle all
 * the while (Redis writes its AOF from its main thread for the same reason). fdatasync, the slow
 * part, still runs in the pool.
 */
export const realFileSystem: FileSystem = {
  async mkdirp(dir) {
    await mkdir(dir, { recursive: true });
  },
  list: (dir) => readdir(dir),
  async readFile(path) {
    const bytes = await readFile(path);
    // A view, not `new Uint8Array(bytes)`: that copies the whole file.
    return new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  },
  async openRead(path) {
    const fd = openSync(path, "r");
    const size = fstatSync(fd).size;
    const file: ReadFile = {
      size,
      readAt(into, position) {
        let read = 0;
        while (read < into.byteLength) {
          const n = readSync(fd, into, read, into.byteLength - read, position + read);
          if (n === 0) break;
          read += n;
        }
        return read;
      },
      close: () => closeSync(fd),
    };
    return file;
  },
  async openAppend(path) {
    const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_APPEND, 0o644);
    let size = (await handle.stat()).size;
    const file: AppendFile = {
      get size() {
        return size;
      },
      async append(data) {
        let written = 0;
        // Synchronous on purpose; see the comment at the top.
        try {
          while (written < data.byteLength) written += writeSync(handle.fd, data, written, data.byteLength - written);
        } finally {
          size += written;
        }
      },
      sync: () => handle.datasync(),
      async truncate(to) {
        await handle.truncate(to);
        size = to;
      },
      close: () => handle.close(),
    };
    return file;
  },
  async createExclusive(path, data) {
    const handle = await open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o644);
    try {
      await handle.writeFile(data);
      await handle.datasync();
    } finally {
      await handle.close();
    }
  },
  rename: (from, to) => rename(from, to),
  link: (from, to) => link(from, to),
  remove: (path) => rm(path, { force: true }),
  async exists(path) {
    try {
      // lstat: a dangling symbolic link is something there too.
      await lstat(path);
      return true;
    } catch (error) {
      if (errorCode(error) === "ENOENT") return false;
      throw error;
    }
  },
  removeTree: (path) => rm(path, { recursive: true, force: true }),
  realpath: (path) => realpath(path),
  async syncDir(dir) {
    const handle = await open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

import { constants } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm } from "node:fs/promises";
import type { AppendFile, FileSystem } from "./file-system.ts";

/** The real file system. Every call runs off the event loop (libuv/Bun thread pool). */
export const realFileSystem: FileSystem = {
  async mkdirp(dir) {
    await mkdir(dir, { recursive: true });
  },
  list: (dir) => readdir(dir),
  async readFile(path) {
    return new Uint8Array(await readFile(path));
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
        try {
          while (written < data.byteLength) {
            const { bytesWritten } = await handle.write(data, written, data.byteLength - written);
            written += bytesWritten;
          }
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
  remove: (path) => rm(path, { force: true }),
  async syncDir(dir) {
    const handle = await open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  },
};

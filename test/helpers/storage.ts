import { readFrame } from "../../src/io/format/frame.ts";
import type { FileSystem } from "../../src/io/fs/file-system.ts";
import type { WriteOp } from "../../src/storage/ops.ts";
import { bytes } from "./bytes.ts";

/** Shared by the storage tests: ops from text, and a file's frame layout. */
export const put = (key: string, value: string): WriteOp => ({ key, value: bytes(value) });
export const del = (key: string): WriteOp => ({ key, value: null });

/** Frame start offsets of a file: [first frame, second, ..., end of the last whole frame]. */
export function frameStarts(file: Uint8Array): number[] {
  const starts = [0];
  for (;;) {
    const read = readFrame(file, starts.at(-1)!);
    if (read.kind !== "frame") return starts;
    starts.push(read.next);
  }
}

/** The file-system calls that change the disk, as `interceptWrites` names them. */
export type WriteCall =
  | "createExclusive"
  | "rename"
  | "link"
  | "remove"
  | "removeTree"
  | "syncDir"
  | "append"
  | "sync"
  | "truncate";

/**
 * Delegates to `inner`, passing every call that changes the disk through `around` (which must run
 * it): a place to count syncs, or to cut the power at an exact point of the write path. `around` is
 * called at once, in the caller's turn, so a count it keeps is current as soon as the call is made.
 */
export function interceptWrites(
  inner: FileSystem,
  around: <T>(call: WriteCall, run: () => Promise<T>) => Promise<T>,
): FileSystem {
  return {
    mkdirp: (dir) => inner.mkdirp(dir),
    list: (dir) => inner.list(dir),
    readFile: (path) => inner.readFile(path),
    openRead: (path) => inner.openRead(path),
    createExclusive: (path, data) => around("createExclusive", () => inner.createExclusive(path, data)),
    rename: (from, to) => around("rename", () => inner.rename(from, to)),
    link: (from, to) => around("link", () => inner.link(from, to)),
    remove: (path) => around("remove", () => inner.remove(path)),
    exists: (path) => inner.exists(path),
    removeTree: (path) => around("removeTree", () => inner.removeTree(path)),
    realpath: (path) => inner.realpath(path),
    syncDir: (dir) => around("syncDir", () => inner.syncDir(dir)),
    async openAppend(path) {
      const file = await inner.openAppend(path);
      return {
        get size() {
          return file.size;
        },
        append: (data) => around("append", () => file.append(data)),
        sync: () => around("sync", () => file.sync()),
        truncate: (size) => around("truncate", () => file.truncate(size)),
        close: () => file.close(),
      };
    },
  };
}

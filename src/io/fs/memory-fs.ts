import type { AppendFile, FileSystem, ReadFile } from "./file-system.ts";

type Op =
  | "append"
  | "sync"
  | "truncate"
  | "rename"
  | "link"
  | "remove"
  | "removeTree"
  | "createExclusive"
  | "readFile"
  | "syncDir";

interface Fault {
  op: Op;
  code: string;
  /** Only paths containing this string; every path when absent. */
  pathIncludes?: string;
  /** How many calls fail before the fault clears itself; forever when absent. */
  times?: number;
  /** Matching calls that succeed before the first failure (to reach a later step); 0 when absent. */
  after?: number;
}

interface MemFile {
  data: Uint8Array;
  size: number;
  /** Bytes that survive a crash: what the last sync covered. */
  synced: number;
}

/**
 * An in-memory FileSystem for tests: faults on demand, a capacity that fills up like a real disk
 * (ENOSPC after a partial write), and `crash()`, which keeps of every file only what was synced
 * (and, if asked, a torn part of what was not).
 * Simplification: directory entries (create, rename, remove) are durable at once.
 */
export class MemoryFileSystem implements FileSystem {
  private readonly files = new Map<string, MemFile>();
  private readonly dirs = new Set<string>();
  private faults: Fault[] = [];
  private capacityBytes: number | undefined;
  /** While held (holdSyncs), each sync waits here; it covers the bytes appended before it was called. */
  private heldSyncs: (() => void)[] | undefined;

  /** Makes matching calls fail with `code` (ENOSPC, EIO, ...). */
  injectFault(fault: Fault): void {
    this.faults.push({ ...fault });
  }

  clearFaults(): void {
    this.faults = [];
  }

  /** Total bytes all files may hold; an append past it writes what fits, then fails with ENOSPC. */
  setCapacity(bytes: number | undefined): void {
    this.capacityBytes = bytes;
  }

  /**
   * Makes every sync from now on wait until the returned function is called (a slow disk), so that
   * tests can see what happens while a sync is in flight. A held sync covers what was appended
   * before it was called, as fdatasync does. Opt-in: syncs complete at once unless this is called.
   */
  /** Syncs waiting for the hold to be released (tests see a write is under way). */
  get syncsWaiting(): number {
    return this.heldSyncs?.length ?? 0;
  }

  holdSyncs(): () => void {
    const held: (() => void)[] = [];
    this.heldSyncs = held;
    return () => {
      if (this.heldSyncs === held) this.heldSyncs = undefined;
      for (const complete of held.splice(0)) complete();
    };
  }

  /** A power cut: every file keeps only what its last sync covered. */
  /**
   * A power cut: every file keeps what its last sync covered. With `random`, each file also keeps a
   * random part of what was written after that (the page cache flushed some of it): the last
   * unsynced write may be torn anywhere. Syncs in flight (held) never complete.
   */
  crash(random?: () => number): void {
    for (const file of this.files.values()) {
      const unsynced = file.size - file.synced;
      file.size = file.synced + (random && unsynced > 0 ? Math.floor(random() * (unsynced + 1)) : 0);
      file.synced = file.size;
    }
    this.heldSyncs = undefined;
  }

  /**
   * The disk as it is now, for the next boot after `crash()`. The crashed process may still have
   * calls under way (a write it had scheduled for its next turn): they land on this disk, never in
   * the files the next process opens. Hard links stay shared; faults and held syncs stay behind.
   */
  image(): MemoryFileSystem {
    const image = new MemoryFileSystem();
    const copies = new Map<MemFile, MemFile>();
    for (const [path, file] of this.files) {
      let copy = copies.get(file);
      if (copy === undefined) {
        copy = { data: file.data.slice(0, file.size), size: file.size, synced: file.synced };
        copies.set(file, copy);
      }
      image.files.set(path, copy);
    }
    for (const dir of this.dirs) image.dirs.add(dir);
    image.capacityBytes = this.capacityBytes;
    return image;
  }

  /** Direct access for corruption tests. */
  bytes(path: string): Uint8Array {
    const file = this.mustGet(path);
    return file.data.subarray(0, file.size);
  }

  overwrite(path: string, data: Uint8Array): void {
    this.files.set(path, { data: data.slice(), size: data.byteLength, synced: data.byteLength });
  }

  async mkdirp(dir: string): Promise<void> {
    this.dirs.add(dir);
  }

  async list(dir: string): Promise<string[]> {
    if (!this.dirs.has(dir)) throw fsError("ENOENT", `no such directory ${dir}`);
    const prefix = `${dir}/`;
    return [...this.files.keys()]
      .filter((p) => p.startsWith(prefix) && !p.slice(prefix.length).includes("/"))
      .map((p) => p.slice(prefix.length));
  }

  async readFile(path: string): Promise<Uint8Array> {
    this.maybeFail("readFile", path);
    return this.bytes(path).slice();
  }

  /** A view of the file as it is now (a later append is not seen); faults as `readFile`. */
  async openRead(path: string): Promise<ReadFile> {
    this.maybeFail("readFile", path);
    const bytes = this.bytes(path);
    return {
      size: bytes.byteLength,
      readAt(into, position) {
        const piece = bytes.subarray(position, position + into.byteLength);
        into.set(piece);
        return piece.byteLength;
      },
      close() {},
    };
  }

  async openAppend(path: string): Promise<AppendFile> {
    let file = this.files.get(path);
    if (!file) {
      file = { data: new Uint8Array(1024), size: 0, synced: 0 };
      this.files.set(path, file);
    }
    const self = this;
    const handle = file;
    return {
      get size() {
        return handle.size;
      },
      async append(data) {
        self.maybeFail("append", path);
        const room = self.capacityBytes === undefined ? Infinity : Math.max(0, self.capacityBytes - self.usedBytes());
        const fits = Math.min(room, data.byteLength);
        grow(handle, handle.size + fits);
        handle.data.set(data.subarray(0, fits), handle.size);
        handle.size += fits;
        if (fits < data.byteLength) throw fsError("ENOSPC", `no space left on device, write ${path}`);
      },
      async sync() {
        self.maybeFail("sync", path);
        const covered = handle.size;
        const complete = () => {
          handle.synced = Math.max(handle.synced, Math.min(covered, handle.size));
        };
        const held = self.heldSyncs;
        if (!held) return complete();
        await new Promise<void>((resolve) =>
          held.push(() => {
            complete();
            resolve();
          }),
        );
      },
      async truncate(size) {
        self.maybeFail("truncate", path);
        handle.size = Math.min(handle.size, size);
        handle.synced = Math.min(handle.synced, size);
      },
      async close() {},
    };
  }

  async createExclusive(path: string, data: Uint8Array): Promise<void> {
    this.maybeFail("createExclusive", path);
    if (this.files.has(path)) throw fsError("EEXIST", `file already exists ${path}`);
    this.overwrite(path, data);
  }

  /** A file, or a directory with everything under it (onto a name that holds nothing, as rename(2) of a directory needs). */
  async rename(from: string, to: string): Promise<void> {
    this.maybeFail("rename", from);
    if (this.files.has(from) || !this.isDir(from)) {
      this.files.set(to, this.mustGet(from));
      this.files.delete(from);
      return;
    }
    if (await this.exists(to)) throw fsError("ENOTEMPTY", `directory not empty, rename ${from} -> ${to}`);
    const moved = (path: string) => `${to}${path.slice(from.length)}`;
    for (const [path, file] of [...this.files]) {
      if (!path.startsWith(`${from}/`)) continue;
      this.files.delete(path);
      this.files.set(moved(path), file);
    }
    for (const dir of [...this.dirs]) {
      if (dir !== from && !dir.startsWith(`${from}/`)) continue;
      this.dirs.delete(dir);
      this.dirs.add(moved(dir));
    }
  }

  /** Both names share one file, as a hard link's do: what is written through one shows through the other. */
  async link(from: string, to: string): Promise<void> {
    this.maybeFail("link", from);
    if (this.files.has(to)) throw fsError("EEXIST", `file already exists ${to}`);
    this.files.set(to, this.mustGet(from));
  }

  async remove(path: string): Promise<void> {
    this.maybeFail("remove", path);
    this.files.delete(path);
  }

  async exists(path: string): Promise<boolean> {
    return this.files.has(path) || this.isDir(path);
  }

  /** The path itself: this file system has no symbolic links. */
  async realpath(path: string): Promise<string> {
    if (!(await this.exists(path))) throw fsError("ENOENT", `no such file or directory, realpath ${path}`);
    return path;
  }

  async removeTree(path: string): Promise<void> {
    this.maybeFail("removeTree", path);
    this.files.delete(path);
    for (const file of [...this.files.keys()]) if (file.startsWith(`${path}/`)) this.files.delete(file);
    for (const dir of [...this.dirs]) if (dir === path || dir.startsWith(`${path}/`)) this.dirs.delete(dir);
  }

  async syncDir(dir: string): Promise<void> {
    this.maybeFail("syncDir", dir);
  }

  /** A directory made with mkdirp, or one a file or directory is under. */
  private isDir(path: string): boolean {
    if (this.dirs.has(path)) return true;
    const prefix = `${path}/`;
    for (const dir of this.dirs) if (dir.startsWith(prefix)) return true;
    for (const file of this.files.keys()) if (file.startsWith(prefix)) return true;
    return false;
  }

  private usedBytes(): number {
    let total = 0;
    for (const file of this.files.values()) total += file.size;
    return total;
  }

  private mustGet(path: string): MemFile {
    const file = this.files.get(path);
    if (!file) throw fsError("ENOENT", `no such file ${path}`);
    return file;
  }

  private maybeFail(op: Op, path: string): void {
    const fault = this.faults.find(
      (f) => f.op === op && (f.pathIncludes === undefined || path.includes(f.pathIncludes)),
    );
    if (!fault) return;
    if (fault.after !== undefined && fault.after > 0) {
      fault.after--;
      return;
    }
    if (fault.times !== undefined && --fault.times <= 0) this.faults = this.faults.filter((f) => f !== fault);
    throw fsError(fault.code, `injected ${fault.code} on ${op} ${path}`);
  }
}

function grow(file: MemFile, needed: number): void {
  if (needed <= file.data.byteLength) return;
  const next = new Uint8Array(Math.max(needed, file.data.byteLength * 2));
  next.set(file.data.subarray(0, file.size));
  file.data = next;
}

function fsError(code: string, message: string): Error {
  return Object.assign(new Error(`${code}: ${message}`), { code });
}

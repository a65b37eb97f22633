import type { AppendFile, FileSystem, ReadFile } from "../../../src/io/fs/file-system.ts";

/**
 * One process's view of a file system: once `kill()`ed, every call, through it or through a file it
 * opened, fails (EBADF) and changes nothing, as a crashed process stops writing. The simulator gives
 * each start of a node a new view, so that work the dead process left half done never reaches the
 * disk the restarted one reads.
 */
export class ProcessFileSystem implements FileSystem {
  private alive = true;

  /** `syncDelay`: what a sync waits for before it starts (a disk's latency, in virtual time in a simulation). */
  constructor(
    private readonly fs: FileSystem,
    private readonly syncDelay?: () => Promise<void>,
  ) {}

  kill(): void {
    this.alive = false;
  }

  private check(): void {
    if (!this.alive)
      throw Object.assign(new Error("EBADF: the process that opened this has crashed"), { code: "EBADF" });
  }

  private async call<T>(run: () => Promise<T>): Promise<T> {
    this.check();
    const result = await run();
    this.check();
    return result;
  }

  mkdirp = (dir: string) => this.call(() => this.fs.mkdirp(dir));
  list = (dir: string) => this.call(() => this.fs.list(dir));
  readFile = (path: string) => this.call(() => this.fs.readFile(path));
  createExclusive = (path: string, data: Uint8Array) => this.call(() => this.fs.createExclusive(path, data));
  rename = (from: string, to: string) => this.call(() => this.fs.rename(from, to));
  link = (from: string, to: string) => this.call(() => this.fs.link(from, to));
  remove = (path: string) => this.call(() => this.fs.remove(path));
  exists = (path: string) => this.call(() => this.fs.exists(path));
  removeTree = (path: string) => this.call(() => this.fs.removeTree(path));
  realpath = (path: string) => this.call(() => this.fs.realpath(path));
  syncDir = (dir: string) => this.call(() => this.delayed(() => this.fs.syncDir(dir)));

  private async delayed<T>(run: () => Promise<T>): Promise<T> {
    await this.syncDelay?.();
    this.check();
    return run();
  }

  async openRead(path: string): Promise<ReadFile> {
    const file = await this.call(() => this.fs.openRead(path));
    return {
      size: file.size,
      readAt: (into, position) => {
        this.check();
        return file.readAt(into, position);
      },
      close: () => file.close(),
    };
  }

  async openAppend(path: string): Promise<AppendFile> {
    const file = await this.call(() => this.fs.openAppend(path));
    const call = <T>(run: () => Promise<T>) => this.call(run);
    return {
      get size() {
        return file.size;
      },
      append: (data) => call(() => file.append(data)),
      sync: () => call(() => this.delayed(() => file.sync())),
      truncate: (size) => call(() => file.truncate(size)),
      close: () => call(() => file.close()),
    };
  }
}

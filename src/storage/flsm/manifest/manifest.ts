import { HomeKvError } from "../../../errors.ts";
import { diskError } from "../../../io/fs/disk-error.ts";
import type { AppendFile, FileSystem } from "../../../io/fs/file-system.ts";
import {
  CURRENT,
  CURRENT_TEMPORARY,
  manifestName,
  parseManifestName,
  SwitchUnknownError,
  switchCurrent,
  writeManifest,
} from "./manifest-files.ts";
import { checkNewDirectory, encodeManifest, replayManifest } from "./manifest-replay.ts";
import { ManifestState, type ManifestView } from "./manifest-state.ts";
import { encodeEditFrame, type VersionEdit } from "./version-edit.ts";

export interface ManifestOptions {
  /** The log is rewritten once it holds at least this many bytes... */
  rewriteBytesMin?: number;
  /** ...and at least this many times the size of a fresh manifest holding the state. */
  rewriteGrowthFactor?: number;
}

export const MANIFEST_REWRITE_BYTES_MIN = 4 << 20;
export const MANIFEST_REWRITE_GROWTH_FACTOR = 4;

/**
 * The durable record of which tables make up the engine: an append-only log of version edits in
 * MANIFEST-<n>, named by CURRENT, replayed at start (manifest-replay.ts) and rewritten as one edit
 * holding the whole state when it grows. One operation at a time: `log` and `rewrite` queue.
 *
 * A failed `log` leaves the state as it was; the caller must then delete no file (a failed sync
 * may still have made the edit durable): the next start decides, and `liveFiles` then says which
 * tables are orphans. After a failed sync, or a switch of CURRENT whose outcome is unknown, every
 * later `log` fails (E_DISK) until a restart, as the WAL does.
 */
export class Manifest {
  private queue: Promise<unknown> = Promise.resolve();
  private broken: HomeKvError | undefined;
  private closed = false;
  /** File numbers handed out: at or above the state's next file number. */
  private allocated: number;
  /** The log size at which to consider a rewrite. */
  private rewriteAtBytes: number;
  readonly stats = { rewrites: 0, rewriteFailures: 0, tornBytes: 0 };

  private constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly current: ManifestState,
    private liveNumber: number,
    private file: AppendFile,
    private readonly options: Required<ManifestOptions>,
  ) {
    this.allocated = current.nextFileNumber;
    this.rewriteAtBytes = options.rewriteBytesMin;
  }

  /** Opens the manifest of `dir`, creating MANIFEST-1 and CURRENT in a new directory. */
  static async open(fs: FileSystem, dir: string, options: ManifestOptions = {}): Promise<Manifest> {
    await fs.mkdirp(dir);
    const names = await fs.list(dir);
    const state = new ManifestState();
    let live: { number: number; file: AppendFile; tornBytes: number };
    if (names.includes(CURRENT)) live = await replayManifest(fs, dir, state);
    else {
      const initial = encodeManifest(1, state);
      await checkNewDirectory(fs, dir, names, initial);
      live = { number: 1, file: await createFirst(fs, dir, initial), tornBytes: 0 };
    }
    // Leftovers of a rewrite a crash interrupted, before or after its switch of CURRENT.
    for (const name of names) {
      const number = parseManifestName(name);
      if (name === CURRENT_TEMPORARY || (number !== undefined && number !== live.number))
        await fs.remove(`${dir}/${name}`).catch(() => {});
    }
    const manifest = new Manifest(fs, dir, state, live.number, live.file, {
      rewriteBytesMin: options.rewriteBytesMin ?? MANIFEST_REWRITE_BYTES_MIN,
      rewriteGrowthFactor: options.rewriteGrowthFactor ?? MANIFEST_REWRITE_GROWTH_FACTOR,
    });
    manifest.stats.tornBytes = live.tornBytes;
    return manifest;
  }

  get state(): ManifestView {
    return this.current;
  }

  /** The live manifest's number (MANIFEST-<n>). */
  get number(): number {
    return this.liveNumber;
  }

  /**
   * False once an edit's outcome on disk is unknown (a failed sync or switch) or the manifest is
   * closed: a table whose edit failed may then be named after a restart, and must be left in place.
   */
  get acceptsEdits(): boolean {
    return this.broken === undefined && !this.closed;
  }

  /** Bytes in the live manifest. */
  get logBytes(): number {
    return this.file.size;
  }

  /** The table numbers the state names: any other table file is an orphan (its edit never became durable). */
  liveFiles(): number[] {
    return this.current.liveFiles();
  }

  /** A number for a new table; the next `log` records that it is used. */
  allocateFileNumber(): number {
    this.allocated = Math.max(this.allocated, this.current.nextFileNumber);
    return this.allocated++;
  }

  /**
   * Applies `edit` and makes it durable (one frame, appended and synced) before resolving. An edit
   * that does not fit the state throws InvalidEditError and writes nothing.
   */
  log(edit: VersionEdit): Promise<void> {
    return this.exclusive(async () => {
      const complete = this.withFileNumbers(edit);
      const undo = this.current.applyUndoable(complete);
      const before = this.file.size;
      try {
        await this.file.append(encodeEditFrame(complete));
      } catch (error) {
        undo();
        await this.file.truncate(before).catch(() => {
          this.broken = diskError("the manifest could not be repaired after a failed write; restart the server", error);
        });
        throw this.broken ?? diskError("the manifest could not be written", error);
      }
      try {
        await this.file.sync();
      } catch (error) {
        undo();
        this.broken = diskError("the manifest could not be synced; restart the server", error);
        throw this.broken;
      }
      await this.rewriteIfLarge();
    });
  }

  /**
   * Runs `read` on the state in the operation queue, between two edits: every edit queued before it
   * is durable, none queued after it is applied yet. Outside the queue a reader could see an edit
   * still being written (undone if that write fails). Refused like `log` once closed or broken.
   */
  capture<T>(read: (state: ManifestView) => T): Promise<T> {
    return this.exclusive(async () => read(this.current));
  }

  /** Writes the state to a new manifest, switches CURRENT to it and removes the old one. */
  rewrite(): Promise<void> {
    return this.exclusive(() => this.install(encodeManifest(this.liveNumber + 1, this.current)));
  }

  /** Closes the file once the operations queued before have run (a broken manifest's too). */
  close(): Promise<void> {
    const closing = this.queue.then(async () => {
      if (this.closed) return;
      this.closed = true;
      await this.file.close();
    });
    this.queue = closing.catch(() => {});
    return closing;
  }

  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.queue.then(() => {
      if (this.closed) throw new HomeKvError("E_UNAVAILABLE", "the manifest is closed");
      if (this.broken) throw this.broken;
      return work();
    });
    this.queue = run.catch(() => {});
    return run;
  }

  /** Records the file numbers allocated since the last edit, unless `edit` already does. */
  private withFileNumbers(edit: VersionEdit): VersionEdit {
    let recorded = this.current.nextFileNumber;
    for (const item of edit) if (item.kind === "next-file-number") recorded = Math.max(recorded, item.number);
    return this.allocated > recorded ? [...edit, { kind: "next-file-number", number: this.allocated }] : edit;
  }

  /**
   * Rewrites once the log is both past `rewriteBytesMin` and `rewriteGrowthFactor` times a fresh
   * manifest. The edit just logged is durable whatever happens here: a failed rewrite is counted and
   * tried again at the next edit.
   */
  private async rewriteIfLarge(): Promise<void> {
    if (this.file.size < this.rewriteAtBytes) return;
    const bytes = encodeManifest(this.liveNumber + 1, this.current);
    const threshold = this.threshold(bytes.byteLength);
    if (this.file.size < threshold) {
      this.rewriteAtBytes = threshold;
      return;
    }
    await this.install(bytes).catch(() => {
      this.stats.rewriteFailures++;
    });
  }

  private threshold(freshBytes: number): number {
    return Math.max(this.options.rewriteBytesMin, this.options.rewriteGrowthFactor * freshBytes);
  }

  /** Makes `bytes`, a whole manifest numbered one above the live one, the live manifest. */
  private async install(bytes: Uint8Array): Promise<void> {
    const { fs, dir } = this;
    const number = this.liveNumber + 1;
    let file: AppendFile;
    try {
      file = await writeManifest(fs, dir, number, bytes);
    } catch (error) {
      throw diskError("the manifest could not be rewritten", error);
    }
    try {
      await switchCurrent(fs, dir, number);
    } catch (error) {
      await file.close().catch(() => {});
      if (error instanceof SwitchUnknownError) {
        // Both manifests hold the same state, but only one of them may take the next edits.
        this.broken = diskError("CURRENT could not be switched to the rewritten manifest; restart the server", error);
        throw this.broken;
      }
      await fs.remove(`${dir}/${manifestName(number)}`).catch(() => {});
      throw diskError("the manifest could not be rewritten", error);
    }
    const old = this.file;
    this.file = file;
    this.liveNumber = number;
    this.rewriteAtBytes = this.threshold(bytes.byteLength);
    this.stats.rewrites++;
    await old.close().catch(() => {});
    // A leftover is harmless: the next start removes it.
    await fs.remove(`${dir}/${manifestName(number - 1)}`).catch(() => {});
  }
}

/** Writes MANIFEST-1 and CURRENT in a new directory; a crash part way leaves what `checkNewDirectory` accepts. */
async function createFirst(fs: FileSystem, dir: string, initial: Uint8Array): Promise<AppendFile> {
  let file: AppendFile | undefined;
  try {
    file = await writeManifest(fs, dir, 1, initial);
    await switchCurrent(fs, dir, 1);
    return file;
  } catch (error) {
    await file?.close().catch(() => {});
    throw diskError("a new manifest could not be created", error);
  }
}

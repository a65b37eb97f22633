import { assert } from "../../../errors.ts";
import type { FileSystem } from "../../../io/fs/file-system.ts";
import type { Entry } from "../entry.ts";
import type { CompactionSink, WrittenTable } from "../levels/compaction.ts";
import type { TableOptions } from "../table/writer.ts";
import { TableWriter } from "../table/writer.ts";

/** A new table's file number: the manifest's (`Manifest.allocateFileNumber`), asked across a Worker's message port. */
export type AllocateNumber = () => number | Promise<number>;

export function tablePath(dir: string, number: number): string {
  return `${dir}/${number}.sst`;
}

/**
 * A compaction's output written as tables: one `<number>.sst` per `startTable`…`finishTable`,
 * each synced and closed when finished (the directory entry is the caller's to sync). It remembers
 * every file it created so that a failed job can take them all back (`discard`).
 */
export class TableFileSink implements CompactionSink {
  private writer: TableWriter | undefined;
  private number = 0;
  /** Every table this sink created, finished or not. */
  readonly paths: string[] = [];

  constructor(
    private readonly fs: FileSystem,
    private readonly dir: string,
    private readonly allocateNumber: AllocateNumber,
    private readonly options: Partial<TableOptions> = {},
  ) {}

  async startTable(): Promise<void> {
    assert(this.writer === undefined, "a compaction table started before the last one finished");
    this.number = await this.allocateNumber();
    const path = tablePath(this.dir, this.number);
    // Before creating: a create that fails after making the file leaves it to `discard`.
    this.paths.push(path);
    this.writer = await TableWriter.create(this.fs, path, this.options);
  }

  add(entry: Entry): Promise<void> {
    assert(this.writer !== undefined, "a compaction entry came before its table started");
    return this.writer.add(entry);
  }

  async finishTable(): Promise<WrittenTable> {
    assert(this.writer !== undefined, "a compaction table finished before it started");
    const { fileBytes } = await this.writer.finish();
    this.writer = undefined;
    return { number: this.number, sizeBytes: fileBytes };
  }

  /**
   * Removes every table written, the one in progress too. Best effort: the caller rethrows the
   * error that failed the job, and a file left by a failed removal is an orphan that the engine
   * removes at open (no manifest edit names it).
   */
  async discard(): Promise<void> {
    const open = this.writer;
    this.writer = undefined;
    await open?.abort().catch(() => {});
    for (const path of this.paths) await this.fs.remove(path).catch(() => {});
  }
}

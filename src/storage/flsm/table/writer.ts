import { assert } from "../../../errors.ts";
import type { AppendFile, FileSystem } from "../../../io/fs/file-system.ts";
import { compareEntries, type Entry } from "../entry.ts";
import { BlockBuilder } from "./block-builder.ts";
import { type BlockCompression, packBlock } from "./block-compression.ts";
import { BlockIndexBuilder } from "./block-index.ts";
import { BloomBuilder } from "./bloom.ts";
import { encodeFooter, HEADER_BYTES, type Section, TABLE_MAGIC } from "./format.ts";
import { encodeProperties, PropertiesCollector, type TableProperties } from "./properties.ts";
import { TtlSectionBuilder } from "./ttl-section.ts";

export interface TableOptions {
  /** A data block ends at the first entry that brings it to this many bytes (an entry is never split). */
  readonly blockBytes: number;
  /** Every this many entries of a block, one is stored with its whole key (a restart point). */
  readonly restartInterval: number;
  readonly bloomBitsPerKey: number;
  readonly compression: BlockCompression;
}

export const TABLE_DEFAULTS: TableOptions = {
  blockBytes: 4096,
  restartInterval: 16,
  bloomBitsPerKey: 10,
  compression: "zstd",
};

export interface FinishedTable {
  readonly properties: TableProperties;
  readonly fileBytes: number;
}

/**
 * Writes one table (format.ts) from entries given in internal-key order, a data block at a time
 * through an AppendFile: it holds one block, the index, the keys' Bloom hashes (8 bytes a key) and
 * the TTL section, never the data. Depends on nothing but the FileSystem and the format code, so a
 * Bun Worker can run it.
 *
 *   const writer = await TableWriter.create(fs, "dir/flsm/7.sst");
 *   for (const entry of sorted) await writer.add(entry);
 *   const { properties, fileBytes } = await writer.finish();   // synced and closed; syncing the
 *                                                               // directory entry is the caller's
 * A failed table is the caller's to `abort()` (closed and removed).
 */
export class TableWriter {
  private readonly block: BlockBuilder;
  private readonly index = new BlockIndexBuilder();
  private readonly bloom: BloomBuilder;
  private readonly ttl = new TtlSectionBuilder();
  private readonly collector = new PropertiesCollector();
  private last: Entry | undefined;
  private offset = HEADER_BYTES;
  /** No more entries: finished, aborted, or finishing. */
  private done = false;
  private closed = false;

  private constructor(
    private readonly fs: FileSystem,
    readonly path: string,
    private readonly file: AppendFile,
    private readonly options: TableOptions,
  ) {
    this.block = new BlockBuilder(options.restartInterval);
    this.bloom = new BloomBuilder(options.bloomBitsPerKey);
  }

  /** Starts a new table at `path`; a file already there is an error (tables are never rewritten). */
  static async create(fs: FileSystem, path: string, options: Partial<TableOptions> = {}): Promise<TableWriter> {
    const settings = { ...TABLE_DEFAULTS, ...options };
    assert(
      Number.isInteger(settings.blockBytes) && settings.blockBytes > 0 && Number.isInteger(settings.restartInterval),
      () => `table options: blockBytes ${settings.blockBytes}, restartInterval ${settings.restartInterval}`,
    );
    assert(
      settings.restartInterval > 0 && settings.bloomBitsPerKey > 0,
      () => `table options: ${JSON.stringify(settings)}`,
    );
    const file = await fs.openAppend(path);
    if (file.size !== 0) {
      await file.close();
      assert(false, () => `table ${path} already exists (${file.size} bytes)`);
    }
    await file.append(TABLE_MAGIC);
    return new TableWriter(fs, path, file, settings);
  }

  /** Adds the next entry; it must come after the previous one in internal-key order. */
  async add(entry: Entry): Promise<void> {
    assert(!this.done, () => `table ${this.path} is already finished`);
    const last = this.last;
    assert(
      last === undefined || compareEntries(last, entry) < 0,
      () =>
        `table ${this.path}: entries must come in internal-key order, but ${describe(entry)} follows ${describe(last!)}`,
    );
    const newKey = last === undefined || Buffer.compare(last.key, entry.key) !== 0;
    if (newKey) this.bloom.add(entry.key);
    if (entry.expiresAtMs !== undefined) this.ttl.add(entry.key, entry.revision, entry.expiresAtMs);
    this.collector.add(entry, newKey);
    this.block.add(entry);
    this.last = entry;
    if (this.block.size >= this.options.blockBytes) await this.flushBlock();
  }

  /** Writes the last block and the metadata, syncs and closes the file. A table holds at least one entry. */
  async finish(): Promise<FinishedTable> {
    assert(!this.done && !this.collector.isEmpty, () => `table ${this.path}: finish needs an open table with entries`);
    if (!this.block.isEmpty) await this.flushBlock();
    this.done = true;
    const properties = this.collector.properties(this.offset - HEADER_BYTES);
    const sections = [this.index.finish(), this.bloom.finish(), this.ttl.finish(), encodeProperties(properties)];
    const [index, bloom, ttl, props] = sections.map((bytes) => {
      const section = { offset: this.offset, size: bytes.byteLength };
      this.offset += bytes.byteLength;
      return section;
    }) as [Section, Section, Section, Section];
    const footer = encodeFooter({ index, bloom, ttl, properties: props });
    await this.file.append(Buffer.concat([...sections, footer]));
    this.offset += footer.byteLength;
    await this.file.sync();
    await this.file.close();
    this.closed = true;
    return { properties, fileBytes: this.offset };
  }

  /** Gives up the table (after a failed add or finish, or when it is not wanted): closes and removes its file. */
  async abort(): Promise<void> {
    this.done = true;
    if (!this.closed) await this.file.close();
    this.closed = true;
    await this.fs.remove(this.path);
  }

  private async flushBlock(): Promise<void> {
    const last = this.last as Entry;
    const { bytes, rawSize } = packBlock(this.block.finish(), this.options.compression);
    await this.file.append(bytes);
    this.index.add(last.key, last.revision, this.offset, bytes.byteLength, rawSize);
    this.offset += bytes.byteLength;
  }
}

function describe(entry: Entry): string {
  return `(${JSON.stringify(new TextDecoder().decode(entry.key))}, revision ${entry.revision})`;
}

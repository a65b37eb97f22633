import { corruptionError, decodeAt } from "../../../io/format/corruption.ts";
import type { FileSystem, ReadFile } from "../../../io/fs/file-system.ts";
import { compareKeyBytes, type Entry, type KeyRange, type SortedRun } from "../entry.ts";
import type { Block } from "./block.ts";
import { BLOCK_TRAILER_BYTES } from "./block-builder.ts";
import type { BlockCache } from "./block-cache.ts";
import { unpackBlock } from "./block-compression.ts";
import { BlockIndex } from "./block-index.ts";
import { BloomFilter, type BloomHash } from "./bloom.ts";
import {
  CRC_BYTES,
  decodeFooter,
  FOOTER_BYTES,
  type Footer,
  HEADER_BYTES,
  readExactly,
  readInto,
  readSection,
} from "./format.ts";
import { decodeProperties, type TableProperties } from "./properties.ts";
import { decodeTtlSection, type TableExpiry } from "./ttl-section.ts";

/** What a reader counts, for the engine's metrics. */
export interface TableReadCounters {
  /** Data blocks read from the file (the block cache did not hold them). */
  blocksRead: number;
  /** Data blocks the block cache answered. */
  blocksCached: number;
  /** Gets the Bloom filter answered alone: the key is not in the table. */
  bloomNegatives: number;
}

/**
 * A table (format.ts) open for reading: a SortedRun over its entries. Open reads the footer, the
 * block index, the Bloom filter and the properties; a data block is read when a read needs it,
 * through the shared block cache. Reads are synchronous (ReadFile.readAt) and check every CRC:
 * damage raises E_CORRUPT naming the file and the offset of the damaged part.
 *
 *   get(key, R)        Bloom filter; then the one block whose last internal key is at or after
 *                      (key, R) (binary search in the index); in it, a binary search of the restart
 *                      points and a walk of at most one restart interval
 *   entries(range)     block after block, lazily; reverse walks each block's entries backwards
 */
export class TableReader implements SortedRun {
  readonly counters: TableReadCounters = { blocksRead: 0, blocksCached: 0, bloomNegatives: 0 };
  private readonly table: number;

  private constructor(
    readonly path: string,
    private readonly file: ReadFile,
    private readonly cache: BlockCache,
    private readonly footer: Footer,
    private readonly index: BlockIndex,
    private readonly bloom: BloomFilter,
    readonly properties: TableProperties,
  ) {
    this.table = cache.newTable();
  }

  static async open(fs: FileSystem, path: string, cache: BlockCache): Promise<TableReader> {
    const file = await fs.openRead(path);
    try {
      if (file.size < HEADER_BYTES + FOOTER_BYTES)
        throw corruptionError(
          path,
          file.size,
          `the file ends after ${file.size} bytes, before a table's footer (truncated)`,
        );
      const header = readExactly(file, path, 0, HEADER_BYTES, "header");
      const footerAt = file.size - FOOTER_BYTES;
      const footer = decodeFooter(path, file.size, header, readExactly(file, path, footerAt, FOOTER_BYTES, "footer"));
      const { index, bloom, properties } = footer;
      const indexBytes = readSection(file, path, index, "block index");
      const blockIndex = decodeAt(
        path,
        index.offset,
        () => new BlockIndex(indexBytes, index.offset, BLOCK_TRAILER_BYTES + 4, CRC_BYTES + 1, footer.version >= 2),
      );
      const bloomBytes = readSection(file, path, bloom, "Bloom filter");
      const filter = decodeAt(path, bloom.offset, () => new BloomFilter(bloomBytes));
      const propertyBytes = readSection(file, path, properties, "properties");
      const props = decodeAt(path, properties.offset, () => decodeProperties(propertyBytes));
      return new TableReader(path, file, cache, footer, blockIndex, filter, props);
    } catch (error) {
      file.close();
      throw error;
    }
  }

  /** What it holds in memory while open: its block index and Bloom filter (its blocks are the cache's). */
  get memoryBytes(): number {
    return this.index.memoryBytes + this.bloom.memoryBytes;
  }

  /** The newest revision of any entry (a StoredRun's: a reader of changes after it skips the table). */
  get maxRevision(): number {
    return this.properties.maxRevision;
  }

  get(key: Uint8Array, revision: number, hash?: BloomHash): Entry | undefined {
    if (!this.bloom.mayContain(key, hash)) {
      this.counters.bloomNegatives++;
      return undefined;
    }
    const block = this.index.find(key, revision);
    return block === this.index.count ? undefined : this.block(block).get(key, revision);
  }

  entries(range: KeyRange, reverse = false): Generator<Entry> {
    return reverse ? this.backward(range) : this.forward(range);
  }

  /** The TTL section: every version with a deadline, without reading a data block. */
  expiring(): TableExpiry[] {
    const { ttl } = this.footer;
    const bytes = readSection(this.file, this.path, ttl, "TTL section");
    return decodeAt(this.path, ttl.offset, () => decodeTtlSection(bytes));
  }

  /** Closes the file and drops its blocks from the cache (nothing reads them any more). */
  close(): void {
    this.file.close();
    this.cache.forget(this.table);
  }

  private *forward({ start, end }: KeyRange): Generator<Entry> {
    const first = start === undefined ? 0 : this.index.find(start, Number.POSITIVE_INFINITY);
    for (let i = first; i < this.index.count; i++) {
      for (const entry of this.block(i).entries(i === first ? start : undefined)) {
        if (end !== undefined && compareKeyBytes(entry.key, end) >= 0) return;
        yield entry;
      }
    }
  }

  private *backward({ start, end }: KeyRange): Generator<Entry> {
    // The block holding the last entry before `end` is the first whose last key reaches `end`, or the last.
    const last =
      end === undefined
        ? this.index.count - 1
        : Math.min(this.index.find(end, Number.POSITIVE_INFINITY), this.index.count - 1);
    for (let i = last; i >= 0; i--) {
      const entries = this.block(i).all();
      for (let j = entries.length - 1; j >= 0; j--) {
        const entry = entries[j] as Entry;
        if (end !== undefined && compareKeyBytes(entry.key, end) >= 0) continue;
        if (start !== undefined && compareKeyBytes(entry.key, start) < 0) return;
        yield entry;
      }
    }
  }

  private block(i: number): Block {
    const offset = this.index.offset(i);
    const size = this.index.size(i);
    const rawSize = this.index.rawSize(i);
    const misses = this.cache.misses;
    const block = this.cache.load(
      this.table,
      offset,
      rawSize === 0 ? size : rawSize,
      rawSize === 0
        ? (into) => readInto(this.file, this.path, offset, into, "data block")
        : (into) => unpackBlock(storedBytes(this.file, this.path, offset, size), into, this.path, offset),
      this.path,
    );
    if (this.cache.misses === misses) this.counters.blocksCached++;
    else this.counters.blocksRead++;
    return block;
  }
}

/**
 * One buffer per thread for a compressed block's stored bytes: reads are synchronous and the bytes
 * are dropped once decompressed, so a block read allocates nothing that waits for a collection but
 * zstd's output. A block larger than the buffer (a large value makes one) reads into its own.
 */
const scratch = new Uint8Array(64 * 1024);

function storedBytes(file: ReadFile, path: string, offset: number, size: number): Uint8Array {
  const into = size <= scratch.byteLength ? scratch.subarray(0, size) : new Uint8Array(size);
  readInto(file, path, offset, into, "data block");
  return into;
}

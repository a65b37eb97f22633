import { ByteReader, FormatError } from "../../../io/format/bytes.ts";
import { corruptionError, decodeAt } from "../../../io/format/corruption.ts";
import type { Entry } from "../entry.ts";
import { BLOCK_TRAILER_BYTES, DEADLINE_FLAG, TOMBSTONE_FLAG } from "./block-builder.ts";
import { CRC_BYTES, compareInternal, crcHolds } from "./format.ts";

/**
 * A data block read back (the format is in block-builder.ts), its CRC and restart points checked.
 * Immutable and shared through the block cache: every search keeps its position in a walker of its own.
 */
export class Block {
  private constructor(
    readonly bytes: Uint8Array,
    private readonly path: string,
    private readonly offset: number,
    private readonly restarts: readonly number[],
    private readonly entriesEnd: number,
  ) {}

  /** Checks the block at `offset` of the table `path`; damage raises E_CORRUPT naming both. */
  static decode(bytes: Uint8Array, path: string, offset: number): Block {
    if (!crcHolds(bytes)) throw corruptionError(path, offset, "a data block fails its checksum");
    const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    const trailerAt = bytes.byteLength - BLOCK_TRAILER_BYTES;
    const count = view.getUint32(bytes.byteLength - CRC_BYTES - 4, true);
    const entriesEnd = trailerAt - 4 * count;
    const restarts: number[] = [];
    for (let i = 0; i < count && entriesEnd > 0; i++) restarts.push(view.getUint32(entriesEnd + 4 * i, true));
    const ordered = restarts.every(
      (at, i) => (i === 0 ? at === 0 : at > (restarts[i - 1] as number)) && at < entriesEnd,
    );
    if (count === 0 || entriesEnd <= 0 || !ordered)
      throw corruptionError(path, offset, "a data block's restart points are not within its entries");
    return new Block(bytes, path, offset, restarts, entriesEnd);
  }

  /** The newest version of `key` at or below `revision` in this block. */
  get(key: Uint8Array, revision: number): Entry | undefined {
    return decodeAt(this.path, this.offset, () => {
      const walker = this.seek(key, revision);
      return walker && Buffer.compare(walker.key(), key) === 0 ? walker.entry() : undefined;
    });
  }

  /** The entries from the first whose key is at or after `fromKey` (every entry without it). */
  *entries(fromKey?: Uint8Array): Generator<Entry> {
    try {
      const walker = fromKey === undefined ? this.walkFrom(0) : this.seek(fromKey, Infinity);
      if (walker === undefined) return;
      do yield walker.entry();
      while (walker.step());
    } catch (error) {
      throw this.damaged(error);
    }
  }

  /** Every entry, in order: what a reverse scan walks backwards. */
  all(): Entry[] {
    return [...this.entries()];
  }

  /** A walker on the first entry at or after (key, revision); undefined when the block ends first. */
  private seek(key: Uint8Array, revision: number): EntryWalker | undefined {
    // The last restart point whose entry is before the target: the target is in its run, or just after.
    let low = 0;
    let high = this.restarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      const walker = this.walkFrom(middle);
      if (compareInternal(walker.key(), walker.revision, key, revision) < 0) low = middle;
      else high = middle - 1;
    }
    const walker = this.walkFrom(low);
    // Bounded: each step consumes an entry of the block.
    while (compareInternal(walker.key(), walker.revision, key, revision) < 0) if (!walker.step()) return undefined;
    return walker;
  }

  /** A walker on the entry at restart point `restart`. */
  private walkFrom(restart: number): EntryWalker {
    const at = this.restarts[restart] as number;
    const walker = new EntryWalker(new ByteReader(this.bytes.subarray(at, this.entriesEnd)));
    walker.step();
    return walker;
  }

  private damaged(error: unknown): unknown {
    return error instanceof FormatError ? corruptionError(this.path, this.offset, error.message) : error;
  }
}

/** Decodes a block's entries one after another, rebuilding each key from the previous one's prefix. */
class EntryWalker {
  revision = 0;
  private keyBytes = new Uint8Array(32);
  private keyLength = 0;
  private flags = 0;
  private createRevision = 0;
  private version = 0;
  private expiresAtMs = 0;
  private value: Uint8Array | null = null;

  constructor(private readonly reader: ByteReader) {}

  /** Decodes the next entry; false at the end of the block's entries. */
  step(): boolean {
    const r = this.reader;
    if (r.remaining === 0) return false;
    const shared = r.varint();
    const unshared = r.varint();
    if (shared > this.keyLength)
      throw new FormatError(`an entry shares ${shared} bytes of a ${this.keyLength}-byte key`);
    this.flags = r.u8();
    if ((this.flags & ~(TOMBSTONE_FLAG | DEADLINE_FLAG)) !== 0)
      throw new FormatError(`unknown entry flags ${this.flags}`);
    this.revision = r.varint();
    this.createRevision = r.varint();
    this.version = r.varint();
    if (this.flags & DEADLINE_FLAG) this.expiresAtMs = r.varint();
    const valueLength = this.flags & TOMBSTONE_FLAG ? -1 : r.varint();
    const suffix = r.raw(unshared);
    if (shared + unshared > this.keyBytes.byteLength) {
      const larger = new Uint8Array(Math.max(shared + unshared, 2 * this.keyBytes.byteLength));
      larger.set(this.keyBytes.subarray(0, shared));
      this.keyBytes = larger;
    }
    this.keyBytes.set(suffix, shared);
    this.keyLength = shared + unshared;
    this.value = valueLength < 0 ? null : r.raw(valueLength);
    return true;
  }

  /** The current key: a view, valid until the next step. */
  key(): Uint8Array {
    return this.keyBytes.subarray(0, this.keyLength);
  }

  /**
   * The current entry, its key and value copied out of the block: an entry kept by a caller
   * (a scan's page, a compaction's output) must not pin a whole cached block in memory.
   */
  entry(): Entry {
    const entry = {
      key: this.key().slice(),
      revision: this.revision,
      value: this.value === null ? null : this.value.slice(),
      createRevision: this.createRevision,
      version: this.version,
    };
    return this.flags & DEADLINE_FLAG ? { ...entry, expiresAtMs: this.expiresAtMs } : entry;
  }
}

import { FormatError } from "../../../io/format/bytes.ts";
import { corruptionError, decodeAt } from "../../../io/format/corruption.ts";
import type { Entry } from "../entry.ts";
import { BLOCK_TRAILER_BYTES, DEADLINE_FLAG, TOMBSTONE_FLAG } from "./block-builder.ts";
import { CRC_BYTES, crcHolds } from "./format.ts";

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
      // The key found is the one asked for: the entry takes the caller's bytes, not a copy.
      return walker?.keyEquals(key) ? walker.entry(key) : undefined;
    });
  }

  /** The same block over other bytes holding the same content (a copy): nothing decoded again. */
  over(bytes: Uint8Array): Block {
    return new Block(bytes, this.path, this.offset, this.restarts, this.entriesEnd);
  }

  /**
   * The entries from the first whose key is at or after `fromKey` (every entry without it). The walk
   * yields between entries, and a cached block's bytes are the cache's to overwrite meanwhile
   * (block-cache.ts): it walks a copy of them.
   */
  *entries(fromKey?: Uint8Array): Generator<Entry> {
    const own = this.over(this.bytes.slice());
    try {
      const walker = fromKey === undefined ? own.walkFrom(0) : own.seek(fromKey, Number.POSITIVE_INFINITY);
      if (walker === undefined) return;
      do yield walker.entry();
      while (walker.step());
    } catch (error) {
      throw error instanceof FormatError ? corruptionError(this.path, this.offset, error.message) : error;
    }
  }

  /** Every entry, in order: what a reverse scan walks backwards. */
  all(): Entry[] {
    return [...this.entries()];
  }

  /** A walker on the first entry at or after (key, revision); undefined when the block ends first. */
  private seek(key: Uint8Array, revision: number): EntryWalker | undefined {
    // The last restart point whose entry is before the target: the target is in its run, or just after.
    const walker = this.walkFrom(0);
    let low = 0;
    let high = this.restarts.length - 1;
    while (low < high) {
      const middle = (low + high + 1) >> 1;
      walker.restartAt(this.restarts[middle] as number);
      if (walker.compareTo(key, revision) < 0) low = middle;
      else high = middle - 1;
    }
    walker.restartAt(this.restarts[low] as number);
    // Bounded: each step consumes an entry of the block.
    while (walker.compareTo(key, revision) < 0) if (!walker.step()) return undefined;
    return walker;
  }

  /** A walker on the entry at restart point `restart`. */
  private walkFrom(restart: number): EntryWalker {
    const walker = new EntryWalker(this.bytes, this.entriesEnd);
    walker.restartAt(this.restarts[restart] as number);
    return walker;
  }
}

/**
 * Decodes a block's entries one after another, rebuilding each key from the previous one's prefix
 * in a buffer of its own. It reads the block's bytes by index rather than through a ByteReader:
 * this is the hot path of every read, and a view object per key or value (subarray) was most of
 * a cached get's time.
 */
class EntryWalker {
  private revision = 0;
  private keyBytes = new Uint8Array(32);
  private keyLength = 0;
  private flags = 0;
  private createRevision = 0;
  private version = 0;
  private expiresAtMs = 0;
  private valueAt = 0;
  /** -1: a tombstone. */
  private valueLength = -1;
  /** Where the next entry starts. */
  private at = 0;

  constructor(
    private readonly bytes: Uint8Array,
    private readonly end: number,
  ) {}

  /** Moves to the entry at `offset`, a restart point (its key whole), and decodes it. */
  restartAt(offset: number): void {
    this.at = offset;
    this.keyLength = 0;
    this.step();
  }

  /** Decodes the next entry; false at the end of the block's entries. */
  step(): boolean {
    if (this.at >= this.end) return false;
    const shared = this.varint();
    const unshared = this.varint();
    if (shared > this.keyLength)
      throw new FormatError(`an entry shares ${shared} bytes of a ${this.keyLength}-byte key`);
    this.flags = this.byte();
    if ((this.flags & ~(TOMBSTONE_FLAG | DEADLINE_FLAG)) !== 0)
      throw new FormatError(`unknown entry flags ${this.flags}`);
    this.revision = this.varint();
    this.createRevision = this.varint();
    this.version = this.varint();
    if (this.flags & DEADLINE_FLAG) this.expiresAtMs = this.varint();
    this.valueLength = this.flags & TOMBSTONE_FLAG ? -1 : this.varint();
    const keyLength = shared + unshared;
    const valueEnd = this.at + unshared + Math.max(0, this.valueLength);
    if (valueEnd > this.end) throw new FormatError(`an entry at ${this.at} runs past the block's entries`);
    if (keyLength > this.keyBytes.byteLength) {
      const larger = new Uint8Array(Math.max(keyLength, 2 * this.keyBytes.byteLength));
      larger.set(this.keyBytes.subarray(0, shared));
      this.keyBytes = larger;
    }
    for (let i = shared; i < keyLength; i++) this.keyBytes[i] = this.bytes[this.at++] as number;
    this.keyLength = keyLength;
    this.valueAt = this.at;
    this.at = valueEnd;
    return true;
  }

  /** The current entry against (key, revision), in internal-key order. */
  compareTo(key: Uint8Array, revision: number): number {
    const own = this.keyBytes;
    const most = Math.min(this.keyLength, key.byteLength);
    for (let i = 0; i < most; i++) {
      const difference = (own[i] as number) - (key[i] as number);
      if (difference !== 0) return difference;
    }
    if (this.keyLength !== key.byteLength) return this.keyLength - key.byteLength;
    return revision > this.revision ? 1 : revision < this.revision ? -1 : 0;
  }

  keyEquals(key: Uint8Array): boolean {
    return this.compareTo(key, this.revision) === 0;
  }

  /**
   * The current entry, its key and value copied out of the block: an entry kept by a caller
   * (a scan's page, a compaction's output) must not pin a whole cached block in memory, and a
   * cached block's bytes are the cache's to overwrite. `key`: bytes equal to the entry's key, to
   * take instead of a copy.
   */
  entry(key?: Uint8Array): Entry {
    const entry = {
      key: key ?? this.keyBytes.slice(0, this.keyLength),
      revision: this.revision,
      value: this.valueLength < 0 ? null : this.bytes.slice(this.valueAt, this.valueAt + this.valueLength),
      createRevision: this.createRevision,
      version: this.version,
    };
    return this.flags & DEADLINE_FLAG ? { ...entry, expiresAtMs: this.expiresAtMs } : entry;
  }

  private byte(): number {
    if (this.at >= this.end) throw new FormatError(`an entry at ${this.at} runs past the block's entries`);
    return this.bytes[this.at++] as number;
  }

  /** Unsigned LEB128, as ByteReader reads it (bytes.ts): at most 8 bytes, a safe integer. */
  private varint(): number {
    let value = 0;
    for (let scale = 1; scale <= 2 ** 49; scale *= 0x80) {
      const byte = this.byte();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) return value;
    }
    throw new FormatError(`a varint at ${this.at} is longer than 8 bytes`);
  }
}

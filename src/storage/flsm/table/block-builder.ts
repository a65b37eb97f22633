import { ByteWriter } from "../../../io/format/bytes.ts";
import type { Entry } from "../entry.ts";
import { sealed } from "./format.ts";

/** Entry flags (frozen: bits are never renumbered). */
export const TOMBSTONE_FLAG = 0x01;
export const DEADLINE_FLAG = 0x02;

const SHORT_SUFFIX_BYTES = 32;

/** Bytes of a block's trailer beyond its restart offsets: the restart count and the CRC. */
export const BLOCK_TRAILER_BYTES = 8;

/**
 * Encodes one data block. Frozen format (docs/internals/flsm-table-format.md):
 *
 *   entries, in internal-key order, each:
 *     varint shared       bytes the key shares with the previous entry's key (0 at a restart point)
 *     varint unshared     bytes of the key after those
 *     u8     flags        TOMBSTONE_FLAG | DEADLINE_FLAG
 *     varint revision, varint createRevision, varint version
 *     varint expiresAtMs  only with DEADLINE_FLAG
 *     varint value length absent for a tombstone
 *     the key's unshared bytes, then the value's bytes
 *   u32 × n  restart points: offsets of the entries stored with their whole key, every
 *            `restartInterval`-th entry from the first, so a reader binary-searches them
 *   u32      n
 *   u32      CRC-32 of every byte of the block before it
 *
 *   keys "apple"@9, "apple"@4, "apply"@7 (interval 16):  (0,5,"apple") (5,0,"") (4,1,"y"); restarts [0]
 */
export class BlockBuilder {
  private readonly out = new ByteWriter(8192);
  private readonly restarts: number[] = [];
  private previousKey: Uint8Array = new Uint8Array(0);
  private sinceRestart = 0;

  constructor(private readonly restartInterval: number) {}

  get isEmpty(): boolean {
    return this.restarts.length === 0;
  }

  /** The bytes the block would take if finished now. */
  get size(): number {
    return this.out.size + 4 * this.restarts.length + BLOCK_TRAILER_BYTES;
  }

  add(entry: Entry): void {
    let shared = 0;
    if (this.restarts.length === 0 || this.sinceRestart === this.restartInterval) {
      this.restarts.push(this.out.size);
      this.sinceRestart = 0;
    } else shared = sharedPrefixBytes(this.previousKey, entry.key);
    this.sinceRestart++;
    const { key, value, expiresAtMs } = entry;
    const flags = (value === null ? TOMBSTONE_FLAG : 0) | (expiresAtMs === undefined ? 0 : DEADLINE_FLAG);
    this.out
      .varint(shared)
      .varint(key.byteLength - shared)
      .u8(flags);
    this.out.varint(entry.revision).varint(entry.createRevision).varint(entry.version);
    if (expiresAtMs !== undefined) this.out.varint(expiresAtMs);
    if (value !== null) this.out.varint(value.byteLength);
    // A short suffix byte by byte: a view (subarray) per entry cost more than the rest of its encoding.
    if (key.byteLength - shared <= SHORT_SUFFIX_BYTES)
      for (let i = shared; i < key.byteLength; i++) this.out.u8(key[i] as number);
    else this.out.raw(key.subarray(shared));
    if (value !== null) this.out.raw(value);
    this.previousKey = key;
  }

  /** The finished block (a copy), and the builder empty for the next one. */
  finish(): Uint8Array {
    for (const restart of this.restarts) this.out.u32(restart);
    this.out.u32(this.restarts.length);
    const block = sealed(this.out);
    this.out.reset();
    this.restarts.length = 0;
    this.sinceRestart = 0;
    this.previousKey = new Uint8Array(0);
    return block;
  }
}

export function sharedPrefixBytes(a: Uint8Array, b: Uint8Array): number {
  const most = Math.min(a.byteLength, b.byteLength);
  let shared = 0;
  while (shared < most && a[shared] === b[shared]) shared++;
  return shared;
}

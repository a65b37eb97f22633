import { assert } from "../../errors.ts";

/**
 * Little-endian binary encoding shared by the on-disk and peer wire formats. Revisions are written
 * as u64 and must be safe integers (2^53: ~285 years at a million commits per second). A varint is
 * unsigned LEB128 (7 bits a byte, low group first, high bit set on every byte but the last): 1 byte
 * below 128, at most 8 for a safe integer, and exactly one encoding per value (no redundant high
 * zero byte), so that equal values always give equal bytes.
 *
 * Both classes work on the bytes directly, without a DataView: a view needs the array's
 * ArrayBuffer, and asking a fresh Uint8Array for it makes JavaScriptCore allocate one — about
 * 0.3 µs per reader or writer, on every entry of every member.
 */
export class ByteWriter {
  private buffer: Uint8Array;
  private length = 0;

  constructor(initialBytes = 256) {
    this.buffer = new Uint8Array(initialBytes);
  }

  get size(): number {
    return this.length;
  }

  u8(value: number): this {
    this.reserve(1);
    this.buffer[this.length++] = value;
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    putU32(this.buffer, this.length, value);
    this.length += 4;
    return this;
  }

  u64(value: number): this {
    assert(Number.isSafeInteger(value) && value >= 0, () => `u64 out of range: ${value}`);
    this.reserve(8);
    putU32(this.buffer, this.length, value % 2 ** 32);
    putU32(this.buffer, this.length + 4, Math.floor(value / 2 ** 32));
    this.length += 8;
    return this;
  }

  varint(value: number): this {
    assert(Number.isSafeInteger(value) && value >= 0, () => `varint out of range: ${value}`);
    this.reserve(VARINT_BYTES_MAX);
    let rest = value;
    // Division, not shifts: the 32-bit shift operators would cut values above 2^31.
    for (; rest >= 0x80; rest = Math.floor(rest / 0x80)) this.buffer[this.length++] = 0x80 | (rest % 0x80);
    this.buffer[this.length++] = rest;
    return this;
  }

  /** Raw bytes, no length prefix. */
  raw(bytes: Uint8Array): this {
    this.reserve(bytes.byteLength);
    this.buffer.set(bytes, this.length);
    this.length += bytes.byteLength;
    return this;
  }

  /** u32 length, then the bytes. */
  bytes(bytes: Uint8Array): this {
    return this.u32(bytes.byteLength).raw(bytes);
  }

  /** u32 byte length, then the UTF-8 bytes. */
  string(text: string): this {
    const most = text.length * 3;
    this.reserve(4 + most);
    const { written } = encoder.encodeInto(text, this.buffer.subarray(this.length + 4, this.length + 4 + most));
    putU32(this.buffer, this.length, written);
    this.length += 4 + written;
    return this;
  }

  /** The bytes written so far (a view: copy it before writing more if it must be kept). */
  written(): Uint8Array {
    return this.buffer.subarray(0, this.length);
  }

  reset(): void {
    this.length = 0;
  }

  private reserve(bytes: number): void {
    if (this.length + bytes <= this.buffer.byteLength) return;
    const next = new Uint8Array(Math.max(this.length + bytes, this.buffer.byteLength * 2));
    next.set(this.buffer.subarray(0, this.length));
    this.buffer = next;
  }
}

/** `value` as 4 little-endian bytes at `at` (ToUint32 of it, as DataView.setUint32 would). */
function putU32(bytes: Uint8Array, at: number, value: number): void {
  bytes[at] = value;
  bytes[at + 1] = value >>> 8;
  bytes[at + 2] = value >>> 16;
  bytes[at + 3] = value >>> 24;
}

/** The 4 little-endian bytes at `at` as an unsigned integer. */
function getU32(bytes: Uint8Array, at: number): number {
  return (bytes[at]! | (bytes[at + 1]! << 8) | (bytes[at + 2]! << 16)) + bytes[at + 3]! * 0x1000000;
}

/** Reads what ByteWriter wrote; every read checks that the bytes are there. */
export class ByteReader {
  private offset = 0;

  constructor(private readonly bytes: Uint8Array) {}

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  /** The offset of the next byte to read, for errors that say where the input went wrong. */
  get position(): number {
    return this.offset;
  }

  u8(): number {
    this.need(1);
    return this.bytes[this.offset++]!;
  }

  u32(): number {
    this.need(4);
    const value = getU32(this.bytes, this.offset);
    this.offset += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const value = getU32(this.bytes, this.offset) + getU32(this.bytes, this.offset + 4) * 2 ** 32;
    this.offset += 8;
    if (!Number.isSafeInteger(value)) throw new FormatError(`u64 ${value} is beyond 2^53`);
    return value;
  }

  varint(): number {
    const start = this.offset;
    let value = 0;
    for (let i = 0, scale = 1; i < VARINT_BYTES_MAX; i++, scale *= 0x80) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0 && i > 0) throw new FormatError(`varint at ${start} ends in a redundant zero byte`);
        if (!Number.isSafeInteger(value)) throw new FormatError(`varint at ${start} is beyond 2^53`);
        return value;
      }
    }
    throw new FormatError(`varint at ${start} is longer than ${VARINT_BYTES_MAX} bytes`);
  }

  /** Steps over `length` bytes, read in place by the caller; returns where they start. */
  skip(length: number): number {
    this.need(length);
    const start = this.offset;
    this.offset += length;
    return start;
  }

  raw(length: number): Uint8Array {
    this.need(length);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** A copy, so that the result does not pin the whole file buffer it came from. */
  bytesCopy(): Uint8Array {
    const length = this.u32();
    const start = this.skip(length);
    return this.bytes.slice(start, start + length);
  }

  string(): string {
    const start = this.offset;
    const length = this.u32();
    return utf8At(this.bytes, this.skip(length), length, start);
  }

  private need(bytes: number): void {
    if (this.offset + bytes > this.bytes.byteLength) {
      throw new FormatError(`needs ${bytes} more bytes at ${this.offset} of ${this.bytes.byteLength}`);
    }
  }
}

/**
 * The string whose UTF-8 is `bytes[start, start + length)`; a FormatError naming `at` (where its
 * length is) when the bytes are not UTF-8.
 */
export function utf8At(bytes: Uint8Array, start: number, length: number, at: number): string {
  try {
    return strictDecoder.decode(bytes.subarray(start, start + length));
  } catch {
    throw new FormatError(`string at ${at} is not UTF-8`);
  }
}

/**
 * Reads `bytes`, a body that begins with its format's version byte, to its last byte: `read` gets
 * the reader past the version. A body of another version, or bytes left after what `read` took, is
 * a FormatError naming `what` (with its article: "a meta state").
 */
export function readVersioned<T>(bytes: Uint8Array, version: number, what: string, read: (r: ByteReader) => T): T {
  const r = new ByteReader(bytes);
  const found = r.u8();
  if (found !== version) throw new FormatError(`${what} of version ${found} (this node reads ${version})`);
  const value = read(r);
  if (r.remaining !== 0) throw new FormatError(`${r.remaining} bytes left after ${what}`);
  return value;
}

/** A payload whose checksum held but whose contents do not parse: a bug or a foreign file. */
export class FormatError extends Error {
  override readonly name = "FormatError";
}

/** 8 × 7 bits hold 2^53. */
const VARINT_BYTES_MAX = 8;
const encoder = new TextEncoder();
// ignoreBOM: a string that starts with U+FEFF keeps it.
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

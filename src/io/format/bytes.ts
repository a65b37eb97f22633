import { assert } from "../../errors.ts";

/**
 * Little-endian binary encoding shared by the on-disk formats. Revisions are written as u64 and
 * must be safe integers (2^53: ~285 years at a million commits per second).
 */
export class ByteWriter {
  private buffer: Uint8Array;
  private view: DataView;
  private length = 0;

  constructor(initialBytes = 256) {
    this.buffer = new Uint8Array(initialBytes);
    this.view = new DataView(this.buffer.buffer);
  }

  get size(): number {
    return this.length;
  }

  u8(value: number): this {
    this.reserve(1);
    this.view.setUint8(this.length, value);
    this.length += 1;
    return this;
  }

  u32(value: number): this {
    this.reserve(4);
    this.view.setUint32(this.length, value, true);
    this.length += 4;
    return this;
  }

  u64(value: number): this {
    assert(Number.isSafeInteger(value) && value >= 0, `u64 out of range: ${value}`);
    this.reserve(8);
    this.view.setUint32(this.length, value % 2 ** 32, true);
    this.view.setUint32(this.length + 4, Math.floor(value / 2 ** 32), true);
    this.length += 8;
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
    this.view.setUint32(this.length, written, true);
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
    this.view = new DataView(next.buffer);
  }
}

/** Reads what ByteWriter wrote; every read checks that the bytes are there. */
export class ByteReader {
  private offset = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.byteLength - this.offset;
  }

  u8(): number {
    this.need(1);
    return this.view.getUint8(this.offset++);
  }

  u32(): number {
    this.need(4);
    const value = this.view.getUint32(this.offset, true);
    this.offset += 4;
    return value;
  }

  u64(): number {
    this.need(8);
    const value = this.view.getUint32(this.offset, true) + this.view.getUint32(this.offset + 4, true) * 2 ** 32;
    this.offset += 8;
    if (!Number.isSafeInteger(value)) throw new FormatError(`u64 ${value} is beyond 2^53`);
    return value;
  }

  raw(length: number): Uint8Array {
    this.need(length);
    const out = this.bytes.subarray(this.offset, this.offset + length);
    this.offset += length;
    return out;
  }

  /** A copy, so that the result does not pin the whole file buffer it came from. */
  bytesCopy(): Uint8Array {
    return this.raw(this.u32()).slice();
  }

  string(): string {
    return strictDecoder.decode(this.raw(this.u32()));
  }

  private need(bytes: number): void {
    if (this.offset + bytes > this.bytes.byteLength) {
      throw new FormatError(`needs ${bytes} more bytes at ${this.offset} of ${this.bytes.byteLength}`);
    }
  }
}

/** A payload whose checksum held but whose contents do not parse: a bug or a foreign file. */
export class FormatError extends Error {
  override readonly name = "FormatError";
}

const encoder = new TextEncoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });

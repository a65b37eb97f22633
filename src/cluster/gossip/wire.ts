import { assert } from "../../errors.ts";
import { FormatError } from "../../io/format/bytes.ts";

/**
 * The two primitive encodings of gossip datagrams (codec.ts has the layout):
 *
 *   str8    u8 byte length, then that many bytes of UTF-8
 *   varint  unsigned LEB128 (7 bits a byte, low first), at most 8 bytes (53 bits), no redundant high
 *           zero byte: a value has exactly one encoding
 *
 * Every datagram is read and written whole, each with dozens of ids and numbers: reader and writer
 * work on the array in place (the writer's is sized exactly beforehand), and ASCII strings skip
 * TextEncoder and TextDecoder.
 */
export class WireReader {
  private offset: number;

  constructor(
    private readonly bytes: Uint8Array,
    start: number,
    private readonly end: number,
  ) {
    this.offset = start;
  }

  get remaining(): number {
    return this.end - this.offset;
  }

  u8(): number {
    if (this.offset >= this.end) throw new FormatError(`runs past the end at byte ${this.offset}`);
    return this.bytes[this.offset++]!;
  }

  varint(): number {
    let value = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const byte = this.u8();
      value += (byte & 0x7f) * scale;
      if (byte < 0x80) {
        if (byte === 0 && i > 0) throw new FormatError("varint with a redundant zero byte");
        if (!Number.isSafeInteger(value)) throw new FormatError("varint beyond 2^53");
        return value;
      }
      scale *= 0x80;
    }
    throw new FormatError("varint longer than 8 bytes");
  }

  str8(): string {
    const length = this.u8();
    const start = this.offset;
    if (length > this.end - start) throw new FormatError(`a ${length}-byte string runs past the end`);
    this.offset += length;
    let ascii = "";
    for (let i = start; i < this.offset; i++) {
      const byte = this.bytes[i]!;
      if (byte >= 0x80) return utf8(this.bytes.subarray(start, this.offset));
      ascii += String.fromCharCode(byte);
    }
    return ascii;
  }
}

/** Writes into an array of exactly the size the message was measured at. */
export class WireWriter {
  readonly bytes: Uint8Array;
  private offset = 0;

  constructor(size: number) {
    this.bytes = new Uint8Array(size);
  }

  get written(): number {
    return this.offset;
  }

  u8(value: number): void {
    this.bytes[this.offset++] = value;
  }

  u16(value: number): void {
    this.u8(value & 0xff);
    this.u8(value >>> 8);
  }

  u32(value: number): void {
    this.u16(value & 0xffff);
    this.u16(value >>> 16);
  }

  str8(text: string): void {
    const length = str8Bytes(text) - 1;
    if (length > 0xff) assert(false, () => `string of ${length} bytes is over 255`);
    this.u8(length);
    if (length === text.length) for (let i = 0; i < length; i++) this.u8(text.charCodeAt(i));
    else {
      this.bytes.set(encoder.encode(text), this.offset);
      this.offset += length;
    }
  }

  varint(value: number): void {
    if (!(Number.isSafeInteger(value) && value >= 0)) assert(false, () => `varint out of range: ${value}`);
    let rest = value;
    // Above 2^31 the shifts of int32 arithmetic would be wrong: divide in floating point.
    for (; rest >= 0x80000000; rest = Math.floor(rest / 0x80)) this.u8((rest % 0x80) | 0x80);
    while (rest >= 0x80) {
      this.u8((rest & 0x7f) | 0x80);
      rest >>>= 7;
    }
    this.u8(rest);
  }
}

export function str8Bytes(text: string): number {
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) >= 0x80) return 1 + Buffer.byteLength(text, "utf8");
  return 1 + text.length;
}

export function varintBytes(value: number): number {
  let bytes = 1;
  for (let rest = value; rest >= 0x80; rest = Math.floor(rest / 0x80)) bytes++;
  return bytes;
}

function utf8(bytes: Uint8Array): string {
  try {
    return strictDecoder.decode(bytes);
  } catch {
    throw new FormatError("string is not UTF-8");
  }
}

const encoder = new TextEncoder();
// ignoreBOM: a value that starts with U+FEFF keeps it.
const strictDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

import { huffmanDecode } from "./huffman.ts";

/**
 * HPACK (RFC 7541): a full decoder, since a peer may index, Huffman-code and evict as it likes, and
 * an encoder that writes every header as a plain literal (never indexed, never Huffman-coded) —
 * valid for every decoder, and the same bytes for the same headers, so a block can be built once.
 */
export type Header = readonly [name: string, value: string];

const STATIC_TABLE: readonly Header[] = [
  [":authority", ""],
  [":method", "GET"],
  [":method", "POST"],
  [":path", "/"],
  [":path", "/index.html"],
  [":scheme", "http"],
  [":scheme", "https"],
  [":status", "200"],
  [":status", "204"],
  [":status", "206"],
  [":status", "304"],
  [":status", "400"],
  [":status", "404"],
  [":status", "500"],
  ["accept-charset", ""],
  ["accept-encoding", "gzip, deflate"],
  ["accept-language", ""],
  ["accept-ranges", ""],
  ["accept", ""],
  ["access-control-allow-origin", ""],
  ["age", ""],
  ["allow", ""],
  ["authorization", ""],
  ["cache-control", ""],
  ["content-disposition", ""],
  ["content-encoding", ""],
  ["content-language", ""],
  ["content-length", ""],
  ["content-location", ""],
  ["content-range", ""],
  ["content-type", ""],
  ["cookie", ""],
  ["date", ""],
  ["etag", ""],
  ["expect", ""],
  ["expires", ""],
  ["from", ""],
  ["host", ""],
  ["if-match", ""],
  ["if-modified-since", ""],
  ["if-none-match", ""],
  ["if-range", ""],
  ["if-unmodified-since", ""],
  ["last-modified", ""],
  ["link", ""],
  ["location", ""],
  ["max-forwards", ""],
  ["proxy-authenticate", ""],
  ["proxy-authorization", ""],
  ["range", ""],
  ["referer", ""],
  ["refresh", ""],
  ["retry-after", ""],
  ["server", ""],
  ["set-cookie", ""],
  ["strict-transport-security", ""],
  ["transfer-encoding", ""],
  ["user-agent", ""],
  ["vary", ""],
  ["via", ""],
  ["www-authenticate", ""],
];
/** An entry's size in the dynamic table: its octets plus 32 (RFC 7541, 4.1). */
const ENTRY_OVERHEAD = 32;
export const DEFAULT_TABLE_BYTES = 4_096;

/** Header blocks of at most this many bytes are remembered, this many of them (then forgotten all at once). */
const CACHED_BLOCK_BYTES_MAX = 512;
const CACHED_BLOCKS_MAX = 64;

interface DecodedBlock {
  /** The table's generation the block was decoded at (it may name entries of the table). */
  generation: number;
  headers: readonly Header[];
  listBytes: number;
}

/**
 * Decodes header blocks in the order they arrive on a connection (the dynamic table depends on it).
 * A client sends the same block again and again (the same method, path, content type and deadline,
 * as literals or as references to the table), so a block that left the table as it was is
 * remembered by its bytes, with the table's generation: the same bytes at the same generation decode
 * to the same headers without decoding them again (a quarter of the native server's CPU per call
 * went into decoding the same block).
 */
export class HpackDecoder {
  /** Newest first, as the index counts them. */
  private readonly dynamic: Header[] = [];
  private bytes = 0;
  private limit = DEFAULT_TABLE_BYTES;
  /** Changes whenever the dynamic table does. */
  private generation = 0;
  private readonly decoded = new Map<string, DecodedBlock>();

  /** `maxTableBytes`: the SETTINGS_HEADER_TABLE_SIZE this side announced, the most an update may ask. */
  constructor(private readonly maxTableBytes = DEFAULT_TABLE_BYTES) {}

  decode(block: Uint8Array): readonly Header[] {
    return this.decodeWithin(block, Number.POSITIVE_INFINITY)!;
  }

  /**
   * The headers of `block` (shared with later calls: not to be changed), or undefined when they would
   * take more than `listBytesMax` (each header's name and value plus 32, as
   * SETTINGS_MAX_HEADER_LIST_SIZE counts them). The block is decoded to its end either way, so that
   * the table stays as the peer's encoder has it; only the headers past the bound are not kept (a
   * small block of indexed references can name megabytes).
   */
  decodeWithin(block: Uint8Array, listBytesMax: number): readonly Header[] | undefined {
    const bytes = Buffer.isBuffer(block) ? block : Buffer.from(block.buffer, block.byteOffset, block.byteLength);
    const key = bytes.length <= CACHED_BLOCK_BYTES_MAX ? bytes.toString("latin1") : undefined;
    const known = key === undefined ? undefined : this.decoded.get(key);
    if (known !== undefined && known.generation === this.generation)
      return known.listBytes <= listBytesMax ? known.headers : undefined;
    const generation = this.generation;
    const headers: Header[] = [];
    let listBytes = 0;
    const keep = (header: Header) => {
      listBytes += header[0].length + header[1].length + ENTRY_OVERHEAD;
      if (listBytes <= listBytesMax) headers.push(header);
    };
    const reader = { bytes, at: 0 };
    let fields = false;
    while (reader.at < bytes.length) {
      const first = bytes[reader.at]!;
      if ((first & 0xe0) !== 0x20) fields = true;
      if (first & 0x80) {
        keep(this.entry(readInteger(reader, 7)));
      } else if (first & 0x40) {
        const header = this.literal(reader, 6);
        keep(header);
        this.insert(header);
      } else if (first & 0x20) {
        // Table size updates open a block, before any field (RFC 7541, 4.2); nghttp2 refuses one later too.
        if (fields) throw new Error("HPACK: a dynamic table size update after a header field");
        const size = readInteger(reader, 5);
        if (size > this.maxTableBytes)
          throw new Error(`HPACK: table size ${size} over the ${this.maxTableBytes} allowed`);
        this.limit = size;
        this.evictTo(size);
        this.generation++;
      } else {
        keep(this.literal(reader, 4)); // without indexing, or never indexed
      }
    }
    if (key !== undefined && this.generation === generation && listBytes <= listBytesMax) {
      if (this.decoded.size >= CACHED_BLOCKS_MAX) this.decoded.clear();
      this.decoded.set(key, { generation, headers, listBytes });
    }
    return listBytes <= listBytesMax ? headers : undefined;
  }

  private literal(reader: Reader, prefixBits: number): Header {
    const index = readInteger(reader, prefixBits);
    const name = index === 0 ? readString(reader) : this.entry(index)[0];
    return [name, readString(reader)];
  }

  private entry(index: number): Header {
    if (index >= 1 && index <= STATIC_TABLE.length) return STATIC_TABLE[index - 1]!;
    const header = this.dynamic[index - STATIC_TABLE.length - 1];
    if (!header) throw new Error(`HPACK: index ${index} is not in the table`);
    return header;
  }

  private insert(header: Header): void {
    const size = header[0].length + header[1].length + ENTRY_OVERHEAD;
    this.generation++;
    // An entry larger than the whole table empties it and is not added (RFC 7541, 4.4).
    this.evictTo(this.limit - size);
    if (size <= this.limit) {
      this.dynamic.unshift(header);
      this.bytes += size;
    }
  }

  private evictTo(bytes: number): void {
    while (this.bytes > Math.max(0, bytes)) {
      const [name, value] = this.dynamic.pop()!;
      this.bytes -= name.length + value.length + ENTRY_OVERHEAD;
    }
  }
}

interface Reader {
  bytes: Buffer;
  at: number;
}

/** An HPACK integer with an N-bit prefix (RFC 7541, 5.1). */
function readInteger(reader: Reader, prefixBits: number): number {
  const mask = (1 << prefixBits) - 1;
  let value = reader.bytes[reader.at++]! & mask;
  if (value < mask) return value;
  for (let shift = 0; ; shift += 7) {
    if (reader.at >= reader.bytes.length) throw new Error("HPACK: integer cut short");
    if (shift > 28) throw new Error("HPACK: integer too large");
    const byte = reader.bytes[reader.at++]!;
    value += (byte & 0x7f) * 2 ** shift;
    if (!(byte & 0x80)) return value;
  }
}

/** A string literal: H bit, length, octets (Latin-1: header octets as they are). */
function readString(reader: Reader): string {
  const { bytes } = reader;
  if (reader.at >= bytes.length) throw new Error("HPACK: string cut short");
  const huffman = (bytes[reader.at]! & 0x80) !== 0;
  const length = readInteger(reader, 7);
  const start = reader.at;
  const end = start + length;
  if (end > bytes.length) throw new Error("HPACK: string cut short");
  reader.at = end;
  if (!huffman) return bytes.toString("latin1", start, end);
  const decoded = huffmanDecode(bytes.subarray(start, end));
  return Buffer.from(decoded.buffer, decoded.byteOffset, decoded.byteLength).toString("latin1");
}

/** Encodes headers as literals without indexing (name by static index when there is one). */
export function encodeLiterals(headers: readonly Header[]): Buffer {
  const parts: number[] = [];
  for (const [name, value] of headers) {
    const nameIndex = STATIC_TABLE.findIndex(([staticName]) => staticName === name) + 1;
    writeInteger(parts, 0x00, 4, nameIndex);
    if (nameIndex === 0) writeString(parts, name);
    writeString(parts, value);
  }
  return Buffer.from(parts);
}

function writeInteger(out: number[], flags: number, prefixBits: number, value: number): void {
  const mask = (1 << prefixBits) - 1;
  if (value < mask) {
    out.push(flags | value);
    return;
  }
  out.push(flags | mask);
  let rest = value - mask;
  while (rest >= 0x80) {
    out.push((rest & 0x7f) | 0x80);
    rest = Math.floor(rest / 0x80);
  }
  out.push(rest);
}

function writeString(out: number[], text: string): void {
  const octets = Buffer.from(text, "latin1");
  writeInteger(out, 0x00, 7, octets.length);
  for (const octet of octets) out.push(octet);
}

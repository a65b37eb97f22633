import { gunzip, inflate } from "node:zlib";
import { status as Status } from "@grpc/grpc-js";
import { GRPC_MESSAGE_PREFIX_BYTES } from "../../h2/grpc-message.ts";
import { StatusError } from "../call.ts";

/**
 * The request messages of one stream, from its DATA frames (gRPC's Length-Prefixed-Message). A
 * message's length is checked against the hard cap as soon as its prefix is in, before any of it is
 * held, and a compressed one is inflated no further than the cap. Refusals are StatusErrors with
 * the statuses (and messages) grpc-js gives for the same requests.
 */
export class MessageReader {
  private chunks: Buffer[] = [];
  private buffered = 0;
  /** The length of the message being read, once its prefix is in. */
  private expected: number | undefined;
  private compressed = false;

  constructor(
    private readonly capBytes: number,
    private readonly encoding: string | undefined,
  ) {
    if (encoding !== undefined && !DECODERS.has(encoding) && encoding !== "identity")
      throw new StatusError({ code: Status.UNIMPLEMENTED, details: `Unknown encoding: ${encoding}` });
  }

  /** Bytes held for a message not yet whole. */
  get heldBytes(): number {
    return this.buffered;
  }

  /** Takes a DATA payload; returns the messages it completed (still compressed, if they were). */
  push(data: Buffer): { bytes: Buffer; compressed: boolean }[] {
    // The common case, a whole uncompressed message in one DATA frame: one view of it.
    if (
      this.buffered === 0 &&
      this.expected === undefined &&
      data.length >= GRPC_MESSAGE_PREFIX_BYTES &&
      data[0] === 0
    ) {
      const length = data.readUInt32BE(1);
      if (data.length === GRPC_MESSAGE_PREFIX_BYTES + length && length <= this.capBytes)
        return [{ bytes: data.subarray(GRPC_MESSAGE_PREFIX_BYTES), compressed: false }];
    }
    const messages: { bytes: Buffer; compressed: boolean }[] = [];
    if (data.length > 0) {
      this.chunks.push(data);
      this.buffered += data.length;
    }
    // Bounded: each round takes a whole message (at least its 5-byte prefix) off the buffer.
    for (let round = 0; round <= data.length; round++) {
      if (this.expected === undefined) {
        if (this.buffered < GRPC_MESSAGE_PREFIX_BYTES) break;
        const prefix = this.take(GRPC_MESSAGE_PREFIX_BYTES);
        this.compressed = prefix[0] !== 0;
        this.expected = prefix.readUInt32BE(1);
        if (this.expected > this.capBytes) {
          throw new StatusError({
            code: Status.RESOURCE_EXHAUSTED,
            details: `Received message larger than max (${this.expected} vs ${this.capBytes})`,
          });
        }
        if (this.compressed && (this.encoding === undefined || this.encoding === "identity")) {
          throw new StatusError({
            code: Status.INTERNAL,
            details: "Compressed flag set with identity encoding",
          });
        }
      }
      if (this.buffered < this.expected) break;
      messages.push({ bytes: this.take(this.expected), compressed: this.compressed });
      this.expected = undefined;
    }
    return messages;
  }

  /** Whether a message was cut short (its prefix, or part of it, came without the rest). */
  get partial(): boolean {
    return this.buffered > 0 || this.expected !== undefined;
  }

  /** Inflates a compressed message, no further than the cap. */
  decompress(bytes: Buffer): Promise<Buffer> {
    const decode = DECODERS.get(this.encoding!)!;
    return new Promise((resolve, reject) => {
      decode(bytes, { maxOutputLength: this.capBytes }, (error, inflated) => {
        if (!error) resolve(inflated);
        else if ((error as { code?: string }).code === "ERR_BUFFER_TOO_LARGE")
          reject(
            new StatusError({
              code: Status.RESOURCE_EXHAUSTED,
              details: `Received message that decompresses to a size larger than ${this.capBytes}`,
            }),
          );
        else reject(new StatusError({ code: Status.INTERNAL, details: "Failed to decompress message" }));
      });
    });
  }

  private take(length: number): Buffer {
    if (length === 0) return EMPTY;
    const first = this.chunks[0]!;
    let out: Buffer;
    if (first.length >= length) {
      out = first.subarray(0, length);
      if (first.length === length) this.chunks.shift();
      else this.chunks[0] = first.subarray(length);
    } else {
      const whole = Buffer.concat(this.chunks);
      out = whole.subarray(0, length);
      this.chunks = whole.length > length ? [whole.subarray(length)] : [];
    }
    this.buffered -= length;
    return out;
  }
}

const EMPTY = Buffer.alloc(0);

type Decoder = typeof gunzip;
const DECODERS = new Map<string, Decoder>([
  ["gzip", gunzip],
  ["deflate", inflate],
]);

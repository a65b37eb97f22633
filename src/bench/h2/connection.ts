import { connect as connectTcp, type Socket } from "node:net";
import { type ConnectionOptions, connect as connectTls } from "node:tls";
import { type Header, HpackDecoder } from "./hpack.ts";

/**
 * One HTTP/2 connection (RFC 9113), client side, made for load generation: requests are a header
 * block and a body, answers the headers, trailers and body. It carries what a unary call needs —
 * flow control both ways, SETTINGS, PING, RST_STREAM, GOAWAY, padding, CONTINUATION — and nothing
 * else (no push, no priorities). Frames queued in one turn go out in one socket write.
 */
export type StreamResult =
  | { ok: true; headers: Header[]; trailers: Header[]; body: Buffer }
  /** `cancelled`: ended by this side (`cancel`), not by the peer or the transport. */
  | { ok: false; error: string; cancelled?: true };

const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PUSH_PROMISE: 5,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;
const SETTING = { ENABLE_PUSH: 0x2, INITIAL_WINDOW_SIZE: 0x4, MAX_FRAME_SIZE: 0x5 } as const;
const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");
const WINDOW_MAX = 2 ** 31 - 1;
const DEFAULT_WINDOW = 65_535;
const DEFAULT_FRAME_BYTES = 16_384;
const PROTOCOL_ERROR = 0x1;
const CANCEL = 0x8;
const STREAM_ID_MAX = 2 ** 31 - 1;

interface Stream {
  id: number;
  startedMs: number;
  sendWindow: number;
  /** The body still to send, from `sent` on. */
  body: Uint8Array;
  sent: number;
  headers?: Header[];
  trailers?: Header[];
  chunks: Buffer[];
  done: (result: StreamResult) => void;
}

export interface H2ConnectionOptions {
  host: string;
  port: number;
  /** TLS (ALPN h2) when given; plaintext HTTP/2 otherwise. */
  tls?: ConnectionOptions;
}

export class H2Connection {
  private readonly socket: Socket;
  private readonly decoder = new HpackDecoder();
  private readonly streams = new Map<number, Stream>();
  /** Streams with body left to send, waiting for window. */
  private readonly sending: Stream[] = [];
  private nextId = 1;
  private peerInitialWindow = DEFAULT_WINDOW;
  private peerFrameBytes = DEFAULT_FRAME_BYTES;
  private connectionSendWindow = DEFAULT_WINDOW;
  /** DATA received and not yet given back to the connection window. */
  private unacknowledged = 0;
  private input: Buffer = Buffer.alloc(0);
  /** A header block spread over CONTINUATION frames: its stream, fragments and END_STREAM flag. */
  private continuing?: { id: number; fragments: Buffer[]; endStream: boolean };
  private output: Buffer[] = [];
  private flushQueued = false;
  /** Set once the connection cannot take new streams; the reason every later request is failed with. */
  private closedReason?: string;

  constructor(options: H2ConnectionOptions) {
    this.socket = options.tls
      ? connectTls({ host: options.host, port: options.port, ALPNProtocols: ["h2"], ...options.tls }, () => {
          const protocol = (this.socket as ReturnType<typeof connectTls>).alpnProtocol;
          if (protocol !== "h2") this.fail(`the server did not agree to HTTP/2 over TLS (ALPN: ${protocol || "none"})`);
        })
      : connectTcp({ host: options.host, port: options.port, noDelay: true });
    this.socket.on("data", (data: Buffer) => this.receive(data));
    this.socket.on("error", (error) => this.fail(error.message));
    this.socket.on("close", () => this.fail("the connection closed"));
    const settings = Buffer.alloc(12);
    settings.writeUInt16BE(SETTING.ENABLE_PUSH, 0);
    settings.writeUInt32BE(0, 2);
    settings.writeUInt16BE(SETTING.INITIAL_WINDOW_SIZE, 6);
    settings.writeUInt32BE(WINDOW_MAX, 8);
    // Wide receive windows: a stream is never given back window (one answer per stream), the
    // connection only after a gigabyte.
    this.queue(PREFACE);
    this.queue(frame(FRAME.SETTINGS, 0, 0, settings));
    this.queue(frame(FRAME.WINDOW_UPDATE, 0, 0, uint32(WINDOW_MAX - DEFAULT_WINDOW)));
  }

  /** Opens a stream: the header block (END_HEADERS), then the body (END_STREAM) as windows allow. */
  request(headerBlock: Uint8Array, body: Uint8Array): { id: number; result: Promise<StreamResult> } {
    const id = this.nextId;
    if (this.closedReason !== undefined)
      return { id, result: Promise.resolve({ ok: false, error: this.closedReason }) };
    if (id > STREAM_ID_MAX)
      return { id, result: Promise.resolve({ ok: false, error: "stream ids used up on this connection" }) };
    this.nextId += 2;
    const result = new Promise<StreamResult>((done) => {
      const stream: Stream = {
        id,
        startedMs: performance.now(),
        sendWindow: this.peerInitialWindow,
        body,
        sent: 0,
        chunks: [],
        done,
      };
      this.streams.set(id, stream);
      this.sending.push(stream);
    });
    // A block over the peer's frame size goes on in CONTINUATION frames (a long token, say).
    const size = this.peerFrameBytes;
    for (let at = 0; at === 0 || at < headerBlock.byteLength; at += size) {
      const last = at + size >= headerBlock.byteLength;
      this.queue(
        frame(
          at === 0 ? FRAME.HEADERS : FRAME.CONTINUATION,
          last ? FLAG.END_HEADERS : 0,
          id,
          headerBlock.subarray(at, at + size),
        ),
      );
    }
    this.pump();
    return { id, result };
  }

  /** Ends a stream early (RST_STREAM CANCEL); its result is `error`. */
  cancel(id: number, error: string): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    this.queue(frame(FRAME.RST_STREAM, 0, id, uint32(CANCEL)));
    this.finish(stream, { ok: false, error, cancelled: true });
  }

  /** Streams open now, oldest first. */
  openStreams(): IterableIterator<{ id: number; startedMs: number }> {
    return this.streams.values();
  }

  close(): void {
    this.fail("the connection was closed by the client");
    this.socket.end();
  }

  private queue(bytes: Buffer): void {
    this.output.push(bytes);
    if (this.flushQueued) return;
    this.flushQueued = true;
    queueMicrotask(() => {
      this.flushQueued = false;
      const chunk = this.output.length === 1 ? this.output[0]! : Buffer.concat(this.output);
      this.output = [];
      if (!this.socket.destroyed) this.socket.write(chunk);
    });
  }

  /** Sends body data in arrival order, as far as the connection's and each stream's windows allow. */
  private pump(): void {
    for (let i = 0; i < this.sending.length; ) {
      const stream = this.sending[i]!;
      const left = stream.body.byteLength - stream.sent;
      const size = Math.max(0, Math.min(left, this.peerFrameBytes, stream.sendWindow, this.connectionSendWindow));
      if (size === 0 && left > 0) {
        i++; // waits for window; the streams behind it may have some
        continue;
      }
      const last = size === left;
      this.queue(
        frame(FRAME.DATA, last ? FLAG.END_STREAM : 0, stream.id, stream.body.subarray(stream.sent, stream.sent + size)),
      );
      stream.sent += size;
      stream.sendWindow -= size;
      this.connectionSendWindow -= size;
      if (last) this.sending.splice(i, 1);
    }
  }

  private receive(data: Buffer): void {
    const input = this.input.length === 0 ? data : Buffer.concat([this.input, data]);
    let at = 0;
    while (input.length - at >= 9) {
      const length = input.readUIntBE(at, 3);
      if (input.length - at < 9 + length) break;
      const type = input[at + 3]!;
      const flags = input[at + 4]!;
      const id = input.readUInt32BE(at + 5) & 0x7fffffff;
      const payload = input.subarray(at + 9, at + 9 + length);
      at += 9 + length;
      try {
        this.onFrame(type, flags, id, payload);
      } catch (error) {
        this.fail(`HTTP/2 protocol error: ${error instanceof Error ? error.message : error}`);
        this.socket.destroy();
        return;
      }
    }
    this.input = at === input.length ? Buffer.alloc(0) : input.subarray(at);
    if (this.unacknowledged >= 2 ** 30) {
      this.queue(frame(FRAME.WINDOW_UPDATE, 0, 0, uint32(this.unacknowledged)));
      this.unacknowledged = 0;
    }
  }

  private onFrame(type: number, flags: number, id: number, payload: Buffer): void {
    if (this.continuing && type !== FRAME.CONTINUATION) throw new Error("a header block was interrupted");
    switch (type) {
      case FRAME.DATA: {
        this.unacknowledged += payload.length;
        const stream = this.streams.get(id);
        if (!stream) return;
        if (stream.headers === undefined) {
          this.queue(frame(FRAME.RST_STREAM, 0, id, uint32(PROTOCOL_ERROR)));
          this.finish(stream, { ok: false, error: "the server sent data before the response headers" });
          return;
        }
        stream.chunks.push(unpad(payload, flags));
        if (flags & FLAG.END_STREAM) this.finishStream(stream);
        return;
      }
      case FRAME.HEADERS: {
        let block = unpad(payload, flags);
        if (flags & FLAG.PRIORITY) block = block.subarray(5);
        this.continuing = { id, fragments: [block], endStream: (flags & FLAG.END_STREAM) !== 0 };
        if (flags & FLAG.END_HEADERS) this.endHeaderBlock();
        return;
      }
      case FRAME.CONTINUATION:
        if (!this.continuing || this.continuing.id !== id) throw new Error("CONTINUATION without a header block");
        this.continuing.fragments.push(payload);
        if (flags & FLAG.END_HEADERS) this.endHeaderBlock();
        return;
      case FRAME.RST_STREAM: {
        const stream = this.streams.get(id);
        if (stream)
          this.finish(stream, {
            ok: false,
            error: `the server reset the stream (HTTP/2 error code ${payload.readUInt32BE(0)})`,
          });
        return;
      }
      case FRAME.SETTINGS:
        if (flags & FLAG.ACK) return;
        for (let at = 0; at + 6 <= payload.length; at += 6)
          this.applySetting(payload.readUInt16BE(at), payload.readUInt32BE(at + 2));
        this.queue(frame(FRAME.SETTINGS, FLAG.ACK, 0, Buffer.alloc(0)));
        this.pump();
        return;
      case FRAME.PING:
        if (!(flags & FLAG.ACK)) this.queue(frame(FRAME.PING, FLAG.ACK, 0, payload));
        return;
      case FRAME.GOAWAY: {
        const lastId = payload.readUInt32BE(0) & 0x7fffffff;
        const reason = `the server is going away (GOAWAY, HTTP/2 error code ${payload.readUInt32BE(4)})`;
        this.closedReason ??= reason;
        for (const stream of [...this.streams.values()])
          if (stream.id > lastId) this.finish(stream, { ok: false, error: reason });
        return;
      }
      case FRAME.WINDOW_UPDATE: {
        const increment = payload.readUInt32BE(0) & 0x7fffffff;
        if (id === 0) this.connectionSendWindow += increment;
        else {
          const stream = this.streams.get(id);
          if (stream) stream.sendWindow += increment;
        }
        this.pump();
        return;
      }
      case FRAME.PUSH_PROMISE:
        throw new Error("PUSH_PROMISE although push was disabled");
      default:
        return; // PRIORITY and unknown frame types are ignored (RFC 9113, 4.1)
    }
  }

  private applySetting(setting: number, value: number): void {
    if (setting === SETTING.INITIAL_WINDOW_SIZE) {
      // The change applies to the windows of the streams already open too (RFC 9113, 6.9.2).
      for (const stream of this.streams.values()) stream.sendWindow += value - this.peerInitialWindow;
      this.peerInitialWindow = value;
    } else if (setting === SETTING.MAX_FRAME_SIZE) this.peerFrameBytes = value;
  }

  /** Every header block is decoded, a finished stream's too: the decoder's table depends on all of them. */
  private endHeaderBlock(): void {
    const { id, fragments, endStream } = this.continuing!;
    this.continuing = undefined;
    const headers = this.decoder.decode(fragments.length === 1 ? fragments[0]! : Buffer.concat(fragments));
    const stream = this.streams.get(id);
    if (!stream) return;
    if (stream.headers === undefined) stream.headers = headers;
    else stream.trailers = headers;
    if (endStream) this.finishStream(stream);
  }

  private finishStream(stream: Stream): void {
    this.finish(stream, {
      ok: true,
      headers: stream.headers ?? [],
      trailers: stream.trailers ?? [],
      body: Buffer.concat(stream.chunks),
    });
  }

  private finish(stream: Stream, result: StreamResult): void {
    this.streams.delete(stream.id);
    const waiting = this.sending.indexOf(stream);
    if (waiting >= 0) this.sending.splice(waiting, 1);
    stream.done(result);
  }

  private fail(reason: string): void {
    this.closedReason ??= reason;
    for (const stream of [...this.streams.values()]) this.finish(stream, { ok: false, error: this.closedReason });
  }
}

function frame(type: number, flags: number, id: number, payload: Uint8Array): Buffer {
  const bytes = Buffer.allocUnsafe(9 + payload.byteLength);
  bytes.writeUIntBE(payload.byteLength, 0, 3);
  bytes[3] = type;
  bytes[4] = flags;
  bytes.writeUInt32BE(id, 5);
  bytes.set(payload, 9);
  return bytes;
}

function uint32(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value, 0);
  return bytes;
}

/** A DATA or HEADERS payload without its padding (PADDED: a length octet first, that many octets last). */
function unpad(payload: Buffer, flags: number): Buffer {
  if (!(flags & FLAG.PADDED)) return payload;
  const padding = payload[0]!;
  if (padding >= payload.length) throw new Error("padding longer than the frame");
  return payload.subarray(1, payload.length - padding);
}

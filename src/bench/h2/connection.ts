import { connect as connectTcp, type Socket } from "node:net";
import { type ConnectionOptions, connect as connectTls } from "node:tls";
import {
  DEFAULT_FRAME_PAYLOAD_MAX,
  DEFAULT_WINDOW_BYTES,
  ERROR_CODE,
  encodeFrame,
  FLAG,
  FRAME,
  frameBytes,
  headerBlockFrames,
  PREFACE,
  readFrame,
  readGoaway,
  readSettings,
  SETTING,
  STREAM_ID_MAX,
  settingsPayload,
  uint32Payload,
  unpad,
  WINDOW_BYTES_MAX,
} from "../../h2/frames.ts";
import { type Header, HpackDecoder } from "../../h2/hpack.ts";

/**
 * One HTTP/2 connection (RFC 9113), client side, made for load generation: requests are a header
 * block and a body, answers the headers, trailers and body. It carries what a unary call needs —
 * flow control both ways, SETTINGS, PING, RST_STREAM, GOAWAY, padding, CONTINUATION — and nothing
 * else (no push, no priorities). Frames queued in one turn go out in one socket write.
 */
export type StreamResult =
  | { ok: true; headers: readonly Header[]; trailers: readonly Header[]; body: Buffer }
  /** `cancelled`: ended by this side (`cancel`), not by the peer or the transport. */
  | { ok: false; error: string; cancelled?: true };

interface Stream {
  id: number;
  startedMs: number;
  sendWindow: number;
  /** The body still to send, from `sent` on. */
  body: Uint8Array;
  sent: number;
  headers?: readonly Header[];
  trailers?: readonly Header[];
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
  private peerInitialWindow = DEFAULT_WINDOW_BYTES;
  private peerFrameBytes = DEFAULT_FRAME_PAYLOAD_MAX;
  private connectionSendWindow = DEFAULT_WINDOW_BYTES;
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
    const settings = settingsPayload([
      [SETTING.ENABLE_PUSH, 0],
      [SETTING.INITIAL_WINDOW_SIZE, WINDOW_BYTES_MAX],
    ]);
    // Wide receive windows: a stream is never given back window (one answer per stream), the
    // connection only after a gigabyte.
    this.queue(PREFACE);
    this.queue(encodeFrame(FRAME.SETTINGS, 0, 0, settings));
    this.queue(encodeFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32Payload(WINDOW_BYTES_MAX - DEFAULT_WINDOW_BYTES)));
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
    for (const frame of headerBlockFrames(id, headerBlock, false, this.peerFrameBytes)) this.queue(frame);
    this.pump();
    return { id, result };
  }

  /** Ends a stream early (RST_STREAM CANCEL); its result is `error`. */
  cancel(id: number, error: string): void {
    const stream = this.streams.get(id);
    if (!stream) return;
    this.queue(encodeFrame(FRAME.RST_STREAM, 0, id, uint32Payload(ERROR_CODE.CANCEL)));
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
        encodeFrame(
          FRAME.DATA,
          last ? FLAG.END_STREAM : 0,
          stream.id,
          stream.body.subarray(stream.sent, stream.sent + size),
        ),
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
    for (let frame = readFrame(input, at); frame !== undefined; frame = readFrame(input, at)) {
      at += frameBytes(frame);
      try {
        this.onFrame(frame.type, frame.flags, frame.streamId, frame.payload);
      } catch (error) {
        this.fail(`HTTP/2 protocol error: ${error instanceof Error ? error.message : error}`);
        this.socket.destroy();
        return;
      }
    }
    this.input = at === input.length ? Buffer.alloc(0) : input.subarray(at);
    if (this.unacknowledged >= 2 ** 30) {
      this.queue(encodeFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32Payload(this.unacknowledged)));
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
          this.queue(encodeFrame(FRAME.RST_STREAM, 0, id, uint32Payload(ERROR_CODE.PROTOCOL_ERROR)));
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
        for (const [setting, value] of readSettings(payload)) this.applySetting(setting, value);
        this.queue(encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0));
        this.pump();
        return;
      case FRAME.PING:
        if (!(flags & FLAG.ACK)) this.queue(encodeFrame(FRAME.PING, FLAG.ACK, 0, payload));
        return;
      case FRAME.GOAWAY: {
        const { lastStreamId, errorCode } = readGoaway(payload);
        const reason = `the server is going away (GOAWAY, HTTP/2 error code ${errorCode})`;
        this.closedReason ??= reason;
        for (const stream of [...this.streams.values()])
          if (stream.id > lastStreamId) this.finish(stream, { ok: false, error: reason });
        return;
      }
      case FRAME.WINDOW_UPDATE: {
        const increment = payload.readUInt32BE(0) & WINDOW_BYTES_MAX;
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

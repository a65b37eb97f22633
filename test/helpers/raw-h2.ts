import { type ClientHttp2Session, constants, connect as http2Connect, type IncomingHttpHeaders } from "node:http2";
import { connect, type Socket } from "node:net";
import {
  DEFAULT_FRAME_PAYLOAD_MAX,
  encodeFrame,
  FLAG,
  FRAME,
  type Frame,
  frameBytes,
  headerBlockFrames,
  PREFACE,
  readFrame,
} from "../../src/h2/frames.ts";
import { grpcMessage } from "../../src/h2/grpc-message.ts";
import { encodeLiterals, type Header } from "../../src/h2/hpack.ts";

/**
 * Raw TCP and hand-made HTTP/2 frames (src/h2), for clients that no well-behaved library would be:
 * partial prefaces, headers far over any limit, streams whose flow-control window is never given
 * back. Header blocks are HPACK literals that are never indexed nor Huffman-coded, which every
 * decoder must accept. What the server sends back is split into frames (`readFrames`) but its
 * header blocks are not decoded: tests look at frame types, error codes, GOAWAY debug data and DATA
 * payloads.
 */

/** The request headers of a gRPC call to `path`, then any extra ones. */
export function grpcRequestHeaders(path: string, extra: readonly Header[] = []): Header[] {
  return [
    [":method", "POST"],
    [":scheme", "http"],
    [":path", path],
    [":authority", "127.0.0.1"],
    ["content-type", "application/grpc"],
    ["te", "trailers"],
    ...extra,
  ];
}

/** A whole unary or server-streaming call on `streamId`: HEADERS, then the message in DATA frames, the last ending the stream. */
export function grpcCallFrames(
  streamId: number,
  path: string,
  message: Uint8Array,
  extraHeaders: readonly Header[] = [],
): Buffer {
  const body = grpcMessage(message);
  const data: Buffer[] = [];
  for (let at = 0; at < body.length; at += DEFAULT_FRAME_PAYLOAD_MAX) {
    const last = at + DEFAULT_FRAME_PAYLOAD_MAX >= body.length;
    const chunk = body.subarray(at, at + DEFAULT_FRAME_PAYLOAD_MAX);
    data.push(encodeFrame(FRAME.DATA, last ? FLAG.END_STREAM : 0, streamId, chunk));
  }
  const headers = headerBlockFrames(streamId, encodeLiterals(grpcRequestHeaders(path, extraHeaders)), false);
  return Buffer.concat([...headers, ...data]);
}

/** The client's side of the connection preface: the magic string and an empty SETTINGS frame. */
export function clientPreface(): Buffer {
  return Buffer.concat([PREFACE, encodeFrame(FRAME.SETTINGS, 0, 0)]);
}

export interface RawConnection {
  readonly socket: Socket;
  /** Everything the server sent so far. */
  received(): Buffer;
  /** Whether the server closed its side (or the connection broke). */
  readonly closed: boolean;
  /** Resolves true once the server closes the connection, false if it still holds it after `timeoutMs`. */
  waitClosed(timeoutMs: number): Promise<boolean>;
  /** Resolves true once `done(everything received)` holds; false if it does not when the connection closes or `timeoutMs` passes. */
  waitUntil(done: (received: Buffer) => boolean, timeoutMs: number): Promise<boolean>;
  write(bytes: Uint8Array): void;
  destroy(): void;
}

/** A plain TCP connection to 127.0.0.1:`port` that records what comes back; `read: false` never reads it. */
export function connectRaw(port: number, options: { read?: boolean; timeoutMs?: number } = {}): Promise<RawConnection> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    const chunks: Buffer[] = [];
    let length = 0;
    let closed = false;
    const waiters = new Set<() => void>();
    const wakeAll = () => {
      for (const wake of waiters) wake();
    };
    const failTimer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no TCP connection to 127.0.0.1:${port} within ${options.timeoutMs ?? 5_000} ms`));
    }, options.timeoutMs ?? 5_000);
    socket.on("data", (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      wakeAll();
    });
    socket.on("error", () => {}); // a reset is one of the answers a test looks for: `closed` says it
    socket.on("close", () => {
      closed = true;
      wakeAll();
    });
    const until = (done: () => boolean, timeoutMs: number) =>
      new Promise<void>((settle) => {
        if (done()) return settle();
        const finish = () => {
          clearTimeout(timer);
          waiters.delete(check);
          settle();
        };
        const check = () => {
          if (done()) finish();
        };
        const timer = setTimeout(finish, timeoutMs);
        waiters.add(check);
      });
    socket.once("connect", () => {
      clearTimeout(failTimer);
      if (options.read === false) socket.pause();
      resolve({
        socket,
        received: () => Buffer.concat(chunks, length),
        get closed() {
          return closed;
        },
        waitClosed: async (timeoutMs) => {
          await until(() => closed, timeoutMs);
          return closed;
        },
        waitUntil: async (done, timeoutMs) => {
          await until(() => closed || done(Buffer.concat(chunks, length)), timeoutMs);
          return done(Buffer.concat(chunks, length));
        },
        write: (bytes) => {
          if (!closed) socket.write(bytes);
        },
        destroy: () => socket.destroy(),
      });
    });
  });
}

/** A raw connection to 127.0.0.1:`port` past its preface: the client's SETTINGS, and its acknowledgement of the server's. */
export async function openRawSession(port: number): Promise<RawConnection> {
  const connection = await connectRaw(port);
  connection.write(Buffer.concat([clientPreface(), encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0)]));
  return connection;
}

/**
 * Writes `chunk(i)` for i = 0, 1, … on `connection` until `count` chunks are written, the connection
 * closes, or the socket has taken nothing for `stallMs` (the server reads no more): how much of a
 * flood a server lets in. Returns the number of chunks written, the last one possibly still in the
 * socket's buffer.
 */
export async function floodUntilStalled(
  connection: RawConnection,
  chunk: (i: number) => Buffer,
  count: number,
  stallMs: number,
): Promise<number> {
  const { socket } = connection;
  for (let i = 0; i < count; i++) {
    if (connection.closed) return i;
    if (socket.write(chunk(i))) continue;
    const drained = await new Promise<boolean>((settle) => {
      const done = (taken: boolean) => {
        clearTimeout(timer);
        socket.off("drain", onDrain);
        socket.off("close", onClose);
        settle(taken);
      };
      const onDrain = () => done(true);
      const onClose = () => done(false);
      const timer = setTimeout(() => done(false), stallMs);
      socket.on("drain", onDrain);
      socket.on("close", onClose);
    });
    if (!drained) return i + 1;
  }
  return count;
}

/**
 * Calls `onFrame` with each frame the server sends on `socket` as it arrives (its payload a view,
 * valid during the call), without keeping what came: for answers too many or too large to read back
 * with `readFrames` each time. Start it before the socket is read (the preface's frames come too).
 */
export function onFrames(socket: Socket, onFrame: (frame: Frame) => void): void {
  let rest = Buffer.alloc(0);
  socket.on("data", (chunk: Buffer) => {
    const bytes = rest.length === 0 ? chunk : Buffer.concat([rest, chunk]);
    let at = 0;
    for (let frame = readFrame(bytes, at); frame !== undefined; frame = readFrame(bytes, at)) {
      onFrame(frame);
      at += frameBytes(frame);
    }
    rest = Buffer.from(bytes.subarray(at));
  });
}

/** Counts the frames the server sends on `socket` that `match`, as they arrive (`onFrames`). */
export function countFrames(
  socket: Socket,
  match: (type: number, flags: number) => boolean,
): { readonly count: number } {
  const counted = { count: 0 };
  onFrames(socket, (frame) => {
    if (match(frame.type, frame.flags)) counted.count++;
  });
  return counted;
}

/** What the server sent on each stream of a raw connection, gathered as it arrives (`tallyStreams`). */
export interface StreamTally {
  /** The streams it sent anything on. */
  readonly begun: Set<number>;
  /** The streams whose response HEADERS came, and the DATA bytes of each that got some. */
  readonly headed: Set<number>;
  readonly dataBytes: Map<number, number>;
  /** The body of each stream that ended with its trailers. */
  readonly answers: Map<number, Buffer>;
  /** The error code of each stream it reset. */
  readonly resets: Map<number, number>;
}

/** Gathers what the server sends on `socket`, stream by stream; start it before the socket is read. */
export function tallyStreams(socket: Socket): StreamTally {
  const tally: StreamTally = {
    begun: new Set(),
    headed: new Set(),
    dataBytes: new Map(),
    answers: new Map(),
    resets: new Map(),
  };
  const bodies = new Map<number, Buffer[]>();
  onFrames(socket, ({ type, flags, streamId, payload }) => {
    if (streamId === 0) return;
    tally.begun.add(streamId);
    if (type === FRAME.RST_STREAM) tally.resets.set(streamId, payload.readUInt32BE(0));
    else if (type === FRAME.DATA) {
      tally.dataBytes.set(streamId, (tally.dataBytes.get(streamId) ?? 0) + payload.length);
      const body = bodies.get(streamId);
      if (body) body.push(Buffer.from(payload));
      else bodies.set(streamId, [Buffer.from(payload)]);
    } else if (type === FRAME.HEADERS) {
      tally.headed.add(streamId);
      if (flags & FLAG.END_STREAM) tally.answers.set(streamId, Buffer.concat(bodies.get(streamId) ?? []));
      bodies.delete(streamId);
    }
  });
  return tally;
}

/** What a gRPC call made with `grpcCall` got back. */
export interface GrpcAnswer {
  /** The gRPC status; undefined when the stream ended without one (reset, or closed connection). */
  status: number | undefined;
  /** grpc-message, percent-decoded. */
  message: string;
  /** Response messages and any other body bytes, as received. */
  body: Buffer;
  /** Every header and trailer value the server sent, and the stream error if any: what a stack trace would have to hide in. */
  everything: string;
}

/**
 * One call over a node:http2 session with a body given byte for byte (`grpcMessage` for a well-formed
 * one). Ends by itself after `timeoutMs` (the stream is cancelled; the status is then undefined).
 * With `hold`, the call stops after the first `bytes` of the body until the server has read them
 * (a PING round trip after them) and `until` resolves, then sends the rest: a call provably in flight.
 */
export function grpcCall(
  session: ClientHttp2Session,
  path: string,
  body: Uint8Array,
  options: {
    headers?: Record<string, string>;
    timeoutMs?: number;
    hold?: { bytes: number; until: () => Promise<unknown> };
  } = {},
): Promise<GrpcAnswer> {
  return new Promise((resolve) => {
    const stream = session.request({
      ":method": "POST",
      ":path": path,
      "content-type": "application/grpc",
      te: "trailers",
      ...options.headers,
    });
    const chunks: Buffer[] = [];
    const seen: string[] = [];
    let status: number | undefined;
    let message = "";
    const onHeaders = (headers: IncomingHttpHeaders) => {
      seen.push(JSON.stringify(headers));
      if (headers["grpc-status"] === undefined) return;
      status = Number(headers["grpc-status"]);
      message = decodeURIComponent(String(headers["grpc-message"] ?? ""));
    };
    const timer = setTimeout(() => stream.close(constants.NGHTTP2_CANCEL), options.timeoutMs ?? 5_000);
    stream.on("response", onHeaders);
    stream.on("trailers", onHeaders);
    stream.on("data", (chunk: Buffer) => chunks.push(chunk));
    stream.on("error", (error: Error) => seen.push(error.message));
    stream.on("close", () => {
      clearTimeout(timer);
      const bytes = Buffer.concat(chunks);
      resolve({ status, message, body: bytes, everything: [...seen, bytes.toString("latin1")].join("\n") });
    });
    if (!options.hold) return stream.end(body);
    const { bytes, until } = options.hold;
    stream.write(body.subarray(0, bytes));
    new Promise((read) => session.ping(read)).then(until).then(
      () => stream.end(body.subarray(bytes)),
      (error: unknown) => {
        seen.push(`while the call was held: ${error}`);
        stream.close(constants.NGHTTP2_CANCEL);
      },
    );
  });
}

/** A node:http2 client session to 127.0.0.1:`port`; its errors are reported through the calls' streams. */
export function h2Session(port: number): ClientHttp2Session {
  const session = http2Connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  return session;
}

import { type ClientHttp2Session, constants, connect as http2Connect, type IncomingHttpHeaders } from "node:http2";
import { connect, type Socket } from "node:net";

/**
 * Raw TCP and hand-made HTTP/2 frames, for clients that no well-behaved library would be: partial
 * prefaces, headers far over any limit, streams whose flow-control window is never given back.
 *
 *   frame = length (3 bytes) · type (1) · flags (1) · stream id (4, top bit reserved) · payload
 *   a gRPC message in DATA = compressed flag (1 byte) · length (4 bytes, big-endian) · protobuf
 *
 * Header blocks are HPACK "literal without indexing, new name" fields with no Huffman coding,
 * which every decoder must accept. What the server sends back is split into frames but its header
 * blocks are not decoded (they may be Huffman-coded): tests look at frame types, error codes,
 * GOAWAY debug data and DATA payloads.
 */
export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FRAME = {
  DATA: 0,
  HEADERS: 1,
  RST_STREAM: 3,
  SETTINGS: 4,
  PING: 6,
  GOAWAY: 7,
  WINDOW_UPDATE: 8,
  CONTINUATION: 9,
} as const;
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4 } as const;
/** The largest frame payload a peer must accept without a SETTINGS saying more. */
export const FRAME_PAYLOAD_MAX = 16_384;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export function frame(type: number, flags: number, streamId: number, payload: Uint8Array = new Uint8Array(0)): Buffer {
  const bytes = Buffer.alloc(9 + payload.byteLength);
  bytes.writeUIntBE(payload.byteLength, 0, 3);
  bytes[3] = type;
  bytes[4] = flags;
  bytes.writeUInt32BE(streamId & 0x7fff_ffff, 5);
  bytes.set(payload, 9);
  return bytes;
}

/** The frames in `bytes`, up to the last complete one (a connection preface is not expected here). */
export function parseFrames(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  while (at + 9 <= bytes.length) {
    const length = bytes.readUIntBE(at, 3);
    if (at + 9 + length > bytes.length) break;
    frames.push({
      type: bytes[at + 3]!,
      flags: bytes[at + 4]!,
      streamId: bytes.readUInt32BE(at + 5) & 0x7fff_ffff,
      payload: bytes.subarray(at + 9, at + 9 + length),
    });
    at += 9 + length;
  }
  return frames;
}

/** An HPACK integer with an N-bit prefix (RFC 7541 §5.1), the bits above the prefix 0. */
function hpackInteger(value: number, prefixBits: number): Buffer {
  const max = (1 << prefixBits) - 1;
  if (value < max) return Buffer.from([value]);
  const bytes = [max];
  let rest = value - max;
  while (rest >= 128) {
    bytes.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  bytes.push(rest);
  return Buffer.from(bytes);
}

function hpackString(text: string): Buffer {
  const bytes = Buffer.from(text, "latin1");
  return Buffer.concat([hpackInteger(bytes.length, 7), bytes]);
}

/** A header block of literal fields, never indexed by either side. */
export function headerBlock(headers: readonly (readonly [string, string])[]): Buffer {
  return Buffer.concat(
    headers.flatMap(([name, value]) => [Buffer.from([0x00]), hpackString(name), hpackString(value)]),
  );
}

/** A header block as one HEADERS frame and as many CONTINUATION frames as its size needs. */
export function headersFrames(streamId: number, block: Buffer, endStream: boolean): Buffer {
  const frames: Buffer[] = [];
  for (let at = 0; at === 0 || at < block.length; at += FRAME_PAYLOAD_MAX) {
    const chunk = block.subarray(at, at + FRAME_PAYLOAD_MAX);
    const last = at + FRAME_PAYLOAD_MAX >= block.length;
    const type = at === 0 ? FRAME.HEADERS : FRAME.CONTINUATION;
    const flags = (last ? FLAG.END_HEADERS : 0) | (at === 0 && endStream ? FLAG.END_STREAM : 0);
    frames.push(frame(type, flags, streamId, chunk));
  }
  return Buffer.concat(frames);
}

/** The request headers of a gRPC call to `path`, then any extra ones. */
export function grpcRequestHeaders(
  path: string,
  extra: readonly (readonly [string, string])[] = [],
): (readonly [string, string])[] {
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

/** One gRPC message with its 5-byte prefix (not compressed). */
export function grpcFrame(message: Uint8Array): Buffer {
  const bytes = Buffer.alloc(5 + message.byteLength);
  bytes.writeUInt32BE(message.byteLength, 1);
  bytes.set(message, 5);
  return bytes;
}

/** A whole unary or server-streaming call on `streamId`: HEADERS, then the message in DATA frames, the last ending the stream. */
export function grpcCallFrames(
  streamId: number,
  path: string,
  message: Uint8Array,
  extraHeaders: readonly (readonly [string, string])[] = [],
): Buffer {
  const body = grpcFrame(message);
  const data: Buffer[] = [];
  for (let at = 0; at < body.length; at += FRAME_PAYLOAD_MAX) {
    const last = at + FRAME_PAYLOAD_MAX >= body.length;
    data.push(frame(FRAME.DATA, last ? FLAG.END_STREAM : 0, streamId, body.subarray(at, at + FRAME_PAYLOAD_MAX)));
  }
  return Buffer.concat([headersFrames(streamId, headerBlock(grpcRequestHeaders(path, extraHeaders)), false), ...data]);
}

/** The client's side of the connection preface: the magic string and an empty SETTINGS frame. */
export function clientPreface(): Buffer {
  return Buffer.concat([PREFACE, frame(FRAME.SETTINGS, 0, 0)]);
}

/** A GOAWAY's error code and debug data (RFC 9113 §6.8). */
export function goaway(payload: Buffer): { errorCode: number; debug: string } {
  return { errorCode: payload.readUInt32BE(4), debug: payload.subarray(8).toString("latin1") };
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
 * One call over a node:http2 session with a body given byte for byte (`grpcFrame` for a well-formed
 * one). Ends by itself after `timeoutMs` (the stream is cancelled; the status is then undefined).
 */
export function grpcCall(
  session: ClientHttp2Session,
  path: string,
  body: Uint8Array,
  options: { headers?: Record<string, string>; timeoutMs?: number } = {},
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
    stream.end(body);
  });
}

/** A node:http2 client session to 127.0.0.1:`port`; its errors are reported through the calls' streams. */
export function h2Session(port: number): ClientHttp2Session {
  const session = http2Connect(`http://127.0.0.1:${port}`);
  session.on("error", () => {});
  return session;
}

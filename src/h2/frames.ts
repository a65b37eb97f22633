/**
 * HTTP/2 frames (RFC 9113, section 4 and 6): the constants, the frame layout and the few payloads
 * that more than one endpoint here writes or reads. Knows nothing of connections, streams or flow
 * control: those belong to whoever holds the socket.
 *
 *   frame = length (3 bytes) · type (1) · flags (1) · stream id (4, top bit reserved) · payload
 *
 * A client connection opens with PREFACE and then a SETTINGS frame; the server's side starts with
 * its SETTINGS frame.
 */
export const PREFACE = Buffer.from("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", "latin1");

export const FRAME = {
  DATA: 0x0,
  HEADERS: 0x1,
  PRIORITY: 0x2,
  RST_STREAM: 0x3,
  SETTINGS: 0x4,
  PUSH_PROMISE: 0x5,
  PING: 0x6,
  GOAWAY: 0x7,
  WINDOW_UPDATE: 0x8,
  CONTINUATION: 0x9,
} as const;

/** END_STREAM and ACK share a bit: which one it is depends on the frame type. */
export const FLAG = { END_STREAM: 0x1, ACK: 0x1, END_HEADERS: 0x4, PADDED: 0x8, PRIORITY: 0x20 } as const;

export const SETTING = {
  HEADER_TABLE_SIZE: 0x1,
  ENABLE_PUSH: 0x2,
  MAX_CONCURRENT_STREAMS: 0x3,
  INITIAL_WINDOW_SIZE: 0x4,
  MAX_FRAME_SIZE: 0x5,
  MAX_HEADER_LIST_SIZE: 0x6,
} as const;

/** Error codes of RST_STREAM and GOAWAY (RFC 9113, section 7). */
export const ERROR_CODE = {
  NO_ERROR: 0x0,
  PROTOCOL_ERROR: 0x1,
  INTERNAL_ERROR: 0x2,
  FLOW_CONTROL_ERROR: 0x3,
  STREAM_CLOSED: 0x5,
  FRAME_SIZE_ERROR: 0x6,
  REFUSED_STREAM: 0x7,
  CANCEL: 0x8,
  COMPRESSION_ERROR: 0x9,
  ENHANCE_YOUR_CALM: 0xb,
} as const;

export const FRAME_HEADER_BYTES = 9;
/** The largest frame payload a peer must accept before its SETTINGS say more (SETTINGS_MAX_FRAME_SIZE). */
export const DEFAULT_FRAME_PAYLOAD_MAX = 16_384;
/** Every flow-control window starts at this size until SETTINGS or WINDOW_UPDATE change it. */
export const DEFAULT_WINDOW_BYTES = 65_535;
/** The largest flow-control window, and the largest stream id (31 bits). */
export const WINDOW_BYTES_MAX = 2 ** 31 - 1;
export const STREAM_ID_MAX = 2 ** 31 - 1;

export interface Frame {
  type: number;
  flags: number;
  streamId: number;
  payload: Buffer;
}

export function encodeFrame(
  type: number,
  flags: number,
  streamId: number,
  payload: Uint8Array = new Uint8Array(0),
): Buffer {
  const bytes = Buffer.allocUnsafe(FRAME_HEADER_BYTES + payload.byteLength);
  writeFrameHeader(bytes, payload.byteLength, type, flags, streamId);
  bytes.set(payload, FRAME_HEADER_BYTES);
  return bytes;
}

/** Just the 9-byte header of a frame whose payload goes out separately (a view of a larger message, not copied). */
export function frameHeader(length: number, type: number, flags: number, streamId: number): Buffer {
  const bytes = Buffer.allocUnsafe(FRAME_HEADER_BYTES);
  writeFrameHeader(bytes, length, type, flags, streamId);
  return bytes;
}

function writeFrameHeader(bytes: Buffer, length: number, type: number, flags: number, streamId: number): void {
  // Byte by byte: Buffer's writeUIntBE was a measurable part of the server's CPU per call.
  bytes[0] = length >>> 16;
  bytes[1] = (length >>> 8) & 0xff;
  bytes[2] = length & 0xff;
  bytes[3] = type;
  bytes[4] = flags;
  const id = streamId & STREAM_ID_MAX;
  bytes[5] = id >>> 24;
  bytes[6] = (id >>> 16) & 0xff;
  bytes[7] = (id >>> 8) & 0xff;
  bytes[8] = id & 0xff;
}

/** The frame that starts at `at` in `bytes`, or undefined while it has not all arrived. The payload is a view. */
export function readFrame(bytes: Buffer, at: number): Frame | undefined {
  if (bytes.length - at < FRAME_HEADER_BYTES) return undefined;
  const length = bytes.readUIntBE(at, 3);
  const end = at + FRAME_HEADER_BYTES + length;
  if (end > bytes.length) return undefined;
  return {
    type: bytes[at + 3]!,
    flags: bytes[at + 4]!,
    streamId: bytes.readUInt32BE(at + 5) & STREAM_ID_MAX,
    payload: bytes.subarray(at + FRAME_HEADER_BYTES, end),
  };
}

/** Every whole frame in `bytes`, in order; a frame cut short at the end is left out. */
export function readFrames(bytes: Buffer): Frame[] {
  const frames: Frame[] = [];
  let at = 0;
  for (let frame = readFrame(bytes, at); frame !== undefined; frame = readFrame(bytes, at)) {
    frames.push(frame);
    at += frameBytes(frame);
  }
  return frames;
}

/** The length a frame takes on the wire. */
export const frameBytes = (frame: Frame): number => FRAME_HEADER_BYTES + frame.payload.length;

/**
 * A header block as one HEADERS frame and as many CONTINUATION frames as `framePayloadMax` needs;
 * END_STREAM goes on the HEADERS frame (RFC 9113, 6.2), END_HEADERS on the last one.
 */
export function headerBlockFrames(
  streamId: number,
  block: Uint8Array,
  endStream: boolean,
  framePayloadMax = DEFAULT_FRAME_PAYLOAD_MAX,
): Buffer[] {
  const frames: Buffer[] = [];
  for (let at = 0; at === 0 || at < block.byteLength; at += framePayloadMax) {
    const first = at === 0;
    const last = at + framePayloadMax >= block.byteLength;
    const flags = (last ? FLAG.END_HEADERS : 0) | (first && endStream ? FLAG.END_STREAM : 0);
    frames.push(
      encodeFrame(
        first ? FRAME.HEADERS : FRAME.CONTINUATION,
        flags,
        streamId,
        first && last ? block : block.subarray(at, at + framePayloadMax),
      ),
    );
  }
  return frames;
}

/** A 4-byte payload: RST_STREAM's error code, WINDOW_UPDATE's increment. */
export function uint32Payload(value: number): Buffer {
  const bytes = Buffer.allocUnsafe(4);
  bytes.writeUInt32BE(value, 0);
  return bytes;
}

/** A SETTINGS payload: 6 bytes a setting, its id (2) and value (4). */
export function settingsPayload(settings: readonly (readonly [id: number, value: number])[]): Buffer {
  const bytes = Buffer.allocUnsafe(6 * settings.length);
  settings.forEach(([id, value], i) => {
    bytes.writeUInt16BE(id, 6 * i);
    bytes.writeUInt32BE(value, 6 * i + 2);
  });
  return bytes;
}

/** The settings a SETTINGS payload carries, in order (a trailing partial entry is ignored). */
export function readSettings(payload: Buffer): [id: number, value: number][] {
  const settings: [number, number][] = [];
  for (let at = 0; at + 6 <= payload.length; at += 6)
    settings.push([payload.readUInt16BE(at), payload.readUInt32BE(at + 2)]);
  return settings;
}

/** A GOAWAY payload: the last stream the sender processed, its error code and debug data (RFC 9113, 6.8). */
export function readGoaway(payload: Buffer): { lastStreamId: number; errorCode: number; debug: string } {
  return {
    lastStreamId: payload.readUInt32BE(0) & STREAM_ID_MAX,
    errorCode: payload.readUInt32BE(4),
    debug: payload.subarray(8).toString("latin1"),
  };
}

/** A DATA or HEADERS payload without its padding (PADDED: a length octet first, that many octets last). */
export function unpad(payload: Buffer, flags: number): Buffer {
  if (!(flags & FLAG.PADDED)) return payload;
  const padding = payload[0]!;
  if (padding >= payload.length) throw new Error("padding longer than the frame");
  return payload.subarray(1, payload.length - padding);
}

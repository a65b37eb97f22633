/**
 * Frames: the checksummed unit of every HomeKV file (WAL segments, checkpoints). Frozen format.
 *
 *   offset 0   u32 LE  payload length
 *   offset 4   u32 LE  CRC-32 of the payload
 *   offset 8   u32 LE  CRC-32 of bytes 0..8 (the header checks itself)
 *   offset 12  payload
 *
 * The header's own checksum tells a torn write from corruption: an intact header whose payload
 * runs past the end of the file is a write cut short (torn); so are a few header bytes, or zeros, at
 * the very end. A header that fails its checksum where the rest of the file holds anything but
 * zeros, or a whole frame whose payload fails its checksum, is damage.
 */
export const FRAME_HEADER_BYTES = 12;
/** No frame is larger; a header claiming more is damaged even when its checksum holds. */
export const FRAME_PAYLOAD_BYTES_MAX = 1 << 30;

export function encodeFrame(payload: Uint8Array): Uint8Array {
  const frame = new Uint8Array(FRAME_HEADER_BYTES + payload.byteLength);
  frame.set(payload, FRAME_HEADER_BYTES);
  sealFrame(frame, 0);
  return frame;
}

/**
 * Fills in the header of the frame that starts at `start` of `bytes` and whose payload runs to the
 * end of `bytes`. Encoders reserve FRAME_HEADER_BYTES, write the payload after them, then seal: one
 * buffer, no copies.
 */
export function sealFrame(bytes: Uint8Array, start: number): void {
  const length = bytes.byteLength - start - FRAME_HEADER_BYTES;
  const view = new DataView(bytes.buffer, bytes.byteOffset + start, FRAME_HEADER_BYTES);
  view.setUint32(0, length, true);
  view.setUint32(4, Bun.hash.crc32(bytes.subarray(start + FRAME_HEADER_BYTES)), true);
  view.setUint32(8, Bun.hash.crc32(bytes.subarray(start, start + 8)), true);
}

export const FRAME_HEADER_PLACEHOLDER = new Uint8Array(FRAME_HEADER_BYTES);

export type FrameRead =
  | { kind: "frame"; payload: Uint8Array; next: number }
  | { kind: "end" }
  /** The file ends inside this frame, or in zeros: what a crash during an append leaves. */
  | { kind: "torn"; reason: string }
  | { kind: "corrupt"; reason: string };

/** What `readFrameIn` answers over bytes that may stop short of the end of the file. */
export type PartialFrameRead =
  | FrameRead
  /** Undecided until more of the file is read: at least `frameBytes` from the offset, when known. */
  | { kind: "more"; frameBytes?: number };

/** Reads the frame at `offset` of a whole file's bytes. */
export function readFrame(bytes: Uint8Array, offset: number): FrameRead {
  return readFrameIn(bytes, offset, true) as FrameRead;
}

/**
 * Reads the frame at `offset` of `bytes`, a window of a file read in pieces that reaches the end of
 * the file when `fileEndsHere`. What a whole file answers is answered the same: whatever the end of
 * the window would decide (a torn tail, zeros to the end) waits for more of the file ("more") unless
 * the window is the end of the file.
 */
export function readFrameIn(bytes: Uint8Array, offset: number, fileEndsHere: boolean): PartialFrameRead {
  const left = bytes.byteLength - offset;
  if (left === 0) return fileEndsHere ? { kind: "end" } : { kind: "more" };
  if (left < FRAME_HEADER_BYTES) {
    return fileEndsHere ? { kind: "torn", reason: `only ${left} bytes of a frame header` } : { kind: "more" };
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset + offset, FRAME_HEADER_BYTES);
  const length = view.getUint32(0, true);
  const headerOk = view.getUint32(8, true) === Bun.hash.crc32(bytes.subarray(offset, offset + 8));
  if (!headerOk || length > FRAME_PAYLOAD_BYTES_MAX) {
    if (!allZero(bytes, offset)) return { kind: "corrupt", reason: "frame header fails its checksum" };
    return fileEndsHere ? { kind: "torn", reason: "zeros where a frame should start" } : { kind: "more" };
  }
  const end = offset + FRAME_HEADER_BYTES + length;
  if (end > bytes.byteLength) {
    if (!fileEndsHere) return { kind: "more", frameBytes: FRAME_HEADER_BYTES + length };
    return { kind: "torn", reason: `frame of ${length} bytes cut short at ${left - FRAME_HEADER_BYTES}` };
  }
  const payload = bytes.subarray(offset + FRAME_HEADER_BYTES, end);
  if (view.getUint32(4, true) !== Bun.hash.crc32(payload)) {
    // A file extended on disk before its data reached it reads back zeros: a torn write. Any other
    // complete frame whose payload fails its checksum is damage, even at the end of the file (no
    // payload is all zeros: every one starts with a non-zero type byte).
    if (end === bytes.byteLength && length > 0 && allZero(bytes, offset + FRAME_HEADER_BYTES)) {
      return fileEndsHere
        ? { kind: "torn", reason: "last frame's payload never reached the disk (zeros)" }
        : { kind: "more", frameBytes: FRAME_HEADER_BYTES + length + 1 };
    }
    return { kind: "corrupt", reason: "frame payload fails its checksum" };
  }
  return { kind: "frame", payload, next: end };
}

function allZero(bytes: Uint8Array, from: number): boolean {
  for (let i = from; i < bytes.byteLength; i++) if (bytes[i] !== 0) return false;
  return true;
}

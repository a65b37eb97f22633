import { FRAME_HEADER_BYTES, readFrame } from "../../io/format/frame.ts";

export type StreamRead =
  | { kind: "frame"; payload: Uint8Array }
  /** The bytes so far end inside a frame: push more. */
  | { kind: "more" }
  | { kind: "corrupt"; reason: string }
  | { kind: "oversized"; reason: string };

/**
 * Cuts a TCP byte stream into the frames of src/io/format/frame.ts: a read may hold part of a frame,
 * or several. Chunks are kept as they come until the next frame is complete, so a large frame
 * arriving in many reads is copied once, not once a read.
 *
 * readFrame was written for files, where zeros at the end are a torn write. A stream has no torn
 * writes: every "torn" answer over bytes that hold the whole frame its header announces is garbage.
 * The one thing read here beside readFrame is the header's length field (offset 0, u32 LE), and only
 * once readFrame has found the header sound: it says how many bytes to wait for, and lets a frame
 * over the limit close the connection before its payload is buffered.
 */
export class FrameStreamReader {
  private head: Uint8Array = new Uint8Array(0);
  private offset = 0;
  private readonly rest: Uint8Array[] = [];
  private restBytes = 0;
  /** Bytes the next frame needs at least: nothing is parsed before they are here. */
  private needed = FRAME_HEADER_BYTES;

  get buffered(): number {
    return this.head.byteLength - this.offset + this.restBytes;
  }

  push(chunk: Uint8Array): void {
    if (chunk.byteLength === 0) return;
    this.rest.push(chunk);
    this.restBytes += chunk.byteLength;
  }

  /** The next whole frame, if the bytes pushed hold one, with a payload of at most `payloadBytesMax`. */
  next(payloadBytesMax: number): StreamRead {
    if (this.buffered < this.needed) return { kind: "more" };
    this.join();
    const read = readFrame(this.head, this.offset);
    switch (read.kind) {
      case "frame": {
        if (read.payload.byteLength > payloadBytesMax) return oversized(read.payload.byteLength, payloadBytesMax);
        this.offset = read.next;
        this.needed = FRAME_HEADER_BYTES;
        // A copy: the payload must not pin the whole read it came in (Raft may keep entries for long).
        return { kind: "frame", payload: read.payload.slice() };
      }
      case "corrupt":
        return read;
      case "end":
        return { kind: "more" };
      case "torn": {
        const length = new DataView(this.head.buffer, this.head.byteOffset + this.offset).getUint32(0, true);
        const frameBytes = FRAME_HEADER_BYTES + length;
        if (frameBytes <= this.buffered) return { kind: "corrupt", reason: read.reason };
        if (length > payloadBytesMax) return oversized(length, payloadBytesMax);
        this.needed = frameBytes;
        return { kind: "more" };
      }
    }
  }

  /** Makes the buffered bytes one array, dropping the frames already read. */
  private join(): void {
    if (this.rest.length === 0) return;
    const left = this.head.byteLength - this.offset;
    if (left === 0 && this.rest.length === 1) this.head = this.rest[0]!;
    else {
      const joined = new Uint8Array(left + this.restBytes);
      joined.set(this.head.subarray(this.offset));
      let at = left;
      for (const chunk of this.rest) {
        joined.set(chunk, at);
        at += chunk.byteLength;
      }
      this.head = joined;
    }
    this.offset = 0;
    this.rest.length = 0;
    this.restBytes = 0;
  }
}

function oversized(bytes: number, max: number): StreamRead {
  return { kind: "oversized", reason: `a frame of ${bytes} bytes is over the limit of ${max}` };
}

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  encodeFrame,
  FRAME_HEADER_BYTES,
  FRAME_PAYLOAD_BYTES_MAX,
  type FrameRead,
  readFrame,
  sealFrame,
} from "../../src/io/format/frame.ts";
import { bytes } from "../helpers/bytes.ts";

function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, p) => sum + p.byteLength, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.byteLength;
  }
  return out;
}

/** Reads frames from offset 0 until something other than a frame; returns the payloads and what stopped it. */
function readAll(buffer: Uint8Array): {
  payloads: Uint8Array[];
  stop: Exclude<FrameRead, { kind: "frame" }>;
  stopOffset: number;
} {
  const payloads: Uint8Array[] = [];
  let offset = 0;
  for (;;) {
    const read = readFrame(buffer, offset);
    if (read.kind !== "frame") return { payloads, stop: read, stopOffset: offset };
    payloads.push(read.payload.slice());
    offset = read.next;
  }
}

const PAYLOADS = [bytes("first frame"), new Uint8Array(0), bytes("the third frame, a little longer than the others")];
const FRAMES = PAYLOADS.map(encodeFrame);
const BUFFER = concat(...FRAMES);
/** Where each frame starts, and where the buffer ends. */
const STARTS = [0];
for (const frame of FRAMES) STARTS.push(STARTS.at(-1)! + frame.byteLength);

function frameIndexAt(offset: number): number {
  return STARTS.findIndex((start, i) => offset >= start && offset < STARTS[i + 1]!);
}

describe("encodeFrame / readFrame", () => {
  test("a frame is a 12-byte header followed by the payload, and reads back to the same payload", () => {
    const payload = bytes("hello, frames");
    const frame = encodeFrame(payload);
    expect(frame.byteLength).toBe(FRAME_HEADER_BYTES + payload.byteLength);
    expect(new DataView(frame.buffer).getUint32(0, true)).toBe(payload.byteLength);
    const read = readFrame(frame, 0);
    expect(read).toEqual({ kind: "frame", payload, next: frame.byteLength });
  });

  test("random payloads round-trip, several to a buffer, and the buffer ends with `end`", () => {
    fc.assert(
      fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 8 }), (payloads) => {
        const buffer = concat(...payloads.map(encodeFrame));
        const { payloads: read, stop, stopOffset } = readAll(buffer);
        expect(read).toEqual(payloads);
        expect(stop.kind).toBe("end");
        expect(stopOffset).toBe(buffer.byteLength);
      }),
      { numRuns: 200 },
    );
  });

  test("a frame can be read at an offset inside a larger buffer view", () => {
    const prefix = new Uint8Array([9, 9, 9]);
    const whole = concat(prefix, BUFFER);
    const view = whole.subarray(prefix.byteLength);
    expect(readAll(view).payloads).toEqual(PAYLOADS);
  });

  test("sealFrame over a reserved header gives the same bytes as encodeFrame", () => {
    const payload = bytes("sealed in place");
    const buffer = concat(new Uint8Array([1, 2, 3]), new Uint8Array(FRAME_HEADER_BYTES), payload);
    sealFrame(buffer, 3);
    expect(buffer.subarray(3)).toEqual(encodeFrame(payload));
  });
});

describe("a buffer cut short (a torn write)", () => {
  test("cut at every byte offset: the whole frames before the cut, then `torn` (or `end` exactly at a boundary), never `corrupt`", () => {
    for (let cut = 0; cut <= BUFFER.byteLength; cut++) {
      const { payloads, stop, stopOffset } = readAll(BUFFER.slice(0, cut));
      const whole = STARTS.filter((start, i) => i > 0 && start <= cut).length;
      expect({ cut, payloads }).toEqual({ cut, payloads: PAYLOADS.slice(0, whole) });
      expect(stopOffset).toBe(STARTS[whole]!);
      expect({ cut, kind: stop.kind }).toEqual({ cut, kind: STARTS.includes(cut) ? "end" : "torn" });
    }
  });

  test("zeros after the last frame read as `torn`, for short and long runs of zeros", () => {
    for (const zeros of [1, 5, FRAME_HEADER_BYTES - 1, FRAME_HEADER_BYTES, FRAME_HEADER_BYTES + 1, 4096]) {
      const { payloads, stop, stopOffset } = readAll(concat(BUFFER, new Uint8Array(zeros)));
      expect(payloads).toEqual(PAYLOADS);
      expect(stopOffset).toBe(BUFFER.byteLength);
      expect({ zeros, kind: stop.kind }).toEqual({ zeros, kind: "torn" });
    }
  });

  test("a last frame whose header was written but whose payload holds zeros (extended, not yet written) is `torn`", () => {
    const last = FRAMES[2]!.slice();
    last.fill(0, FRAME_HEADER_BYTES);
    const { payloads, stop } = readAll(concat(FRAMES[0]!, FRAMES[1]!, last));
    expect(payloads).toEqual(PAYLOADS.slice(0, 2));
    expect(stop.kind).toBe("torn");
  });
});

describe("a damaged buffer", () => {
  test("flipping any single bit of any byte in a frame followed by another frame reads as `corrupt` at that frame", () => {
    const followed = STARTS[2]!; // frames 0 and 1 are followed by another frame
    for (let at = 0; at < followed; at++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const damaged = BUFFER.slice();
        damaged[at]! ^= mask;
        const { payloads, stop, stopOffset } = readAll(damaged);
        const frame = frameIndexAt(at);
        expect({ at, mask, kind: stop.kind }).toEqual({ at, mask, kind: "corrupt" });
        expect(stopOffset).toBe(STARTS[frame]!);
        expect(payloads).toEqual(PAYLOADS.slice(0, frame));
      }
    }
  });

  test("flipping a byte of the last frame reads as `torn` or `corrupt`, never as a frame with a wrong payload", () => {
    for (let at = STARTS[2]!; at < BUFFER.byteLength; at++) {
      for (const mask of [0x01, 0x80, 0xff]) {
        const damaged = BUFFER.slice();
        damaged[at]! ^= mask;
        const { payloads, stop, stopOffset } = readAll(damaged);
        expect(payloads).toEqual(PAYLOADS.slice(0, 2));
        expect(stopOffset).toBe(STARTS[2]!);
        expect(["torn", "corrupt"]).toContain(stop.kind);
      }
    }
  });

  test("a flipped byte in the payload of the last, complete frame is `corrupt`: damage is never cut off as a torn write", () => {
    for (let at = STARTS[2]! + FRAME_HEADER_BYTES; at < BUFFER.byteLength; at++) {
      const damaged = BUFFER.slice();
      damaged[at]! ^= 0x01;
      expect(readAll(damaged).stop.kind).toBe("corrupt");
    }
  });

  test("random single-byte damage anywhere never yields a frame whose payload differs from what was written", () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 64 }), { minLength: 1, maxLength: 5 }),
        fc.nat(),
        fc.integer({ min: 1, max: 255 }),
        (payloads, pick, mask) => {
          const buffer = concat(...payloads.map(encodeFrame));
          const at = pick % buffer.byteLength;
          buffer[at]! ^= mask;
          const { payloads: read } = readAll(buffer);
          // Every frame that reads back is one that was written, at its place, unchanged.
          expect(read).toEqual(payloads.slice(0, read.length));
          expect(read.length).toBeLessThan(payloads.length);
        },
      ),
      { numRuns: 500 },
    );
  });

  test("non-zero garbage after the last frame is `corrupt`, not `torn`", () => {
    const garbage = new Uint8Array(40).fill(0x5a);
    const { payloads, stop } = readAll(concat(BUFFER, garbage));
    expect(payloads).toEqual(PAYLOADS);
    expect(stop.kind).toBe("corrupt");
  });

  test("a header that checks out but claims more than FRAME_PAYLOAD_BYTES_MAX is not accepted", () => {
    for (const length of [FRAME_PAYLOAD_BYTES_MAX + 1, 0xffff_ffff]) {
      const header = new Uint8Array(FRAME_HEADER_BYTES);
      const view = new DataView(header.buffer);
      view.setUint32(0, length, true);
      view.setUint32(4, 0, true);
      view.setUint32(8, Bun.hash.crc32(header.subarray(0, 8)), true);
      // Followed by a frame: damage. Alone at the end of the file: still not a frame to wait for.
      expect(readFrame(concat(header, FRAMES[0]!), 0).kind).toBe("corrupt");
      expect(readFrame(header, 0).kind).not.toBe("frame");
      expect(readFrame(concat(FRAMES[0]!, header, FRAMES[1]!), FRAMES[0]!.byteLength).kind).toBe("corrupt");
    }
  });

  test("a header claiming exactly FRAME_PAYLOAD_BYTES_MAX is a valid header (a torn frame when the bytes are missing)", () => {
    const header = new Uint8Array(FRAME_HEADER_BYTES);
    const view = new DataView(header.buffer);
    view.setUint32(0, FRAME_PAYLOAD_BYTES_MAX, true);
    view.setUint32(8, Bun.hash.crc32(header.subarray(0, 8)), true);
    expect(readFrame(concat(header, FRAMES[0]!), 0).kind).toBe("torn");
  });
});

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { FileFrames } from "../../src/io/format/file-frames.ts";
import { encodeFrame, FRAME_HEADER_BYTES, type FrameRead, readFrame } from "../../src/io/format/frame.ts";
import type { ReadFile } from "../../src/io/fs/file-system.ts";

/** A file over `bytes` that records the largest read asked of it. */
function fileOf(bytes: Uint8Array): ReadFile & { largestReadBytes: number } {
  return {
    size: bytes.byteLength,
    largestReadBytes: 0,
    readAt(into, position) {
      this.largestReadBytes = Math.max(this.largestReadBytes, into.byteLength);
      const piece = bytes.subarray(position, position + into.byteLength);
      into.set(piece);
      return piece.byteLength;
    },
    close() {},
  };
}

type Stop = Exclude<FrameRead, { kind: "frame" }>;

/** Every frame up to the first answer that is not one, with the offsets: the same shape for both readers. */
function framesOf(next: () => FrameRead): { payloads: number[][]; stop: Stop; nexts: number[] } {
  const payloads: number[][] = [];
  const nexts: number[] = [];
  for (let i = 0; i < 10_000; i++) {
    const read = next();
    if (read.kind !== "frame") return { payloads, stop: read, nexts };
    payloads.push([...read.payload]);
    nexts.push(read.next);
  }
  throw new Error("more than 10,000 frames");
}

function wholeFile(bytes: Uint8Array) {
  let offset = 0;
  return framesOf(() => {
    const read = readFrame(bytes, offset);
    if (read.kind === "frame") offset = read.next;
    return read;
  });
}

function inChunks(bytes: Uint8Array, chunkBytes: number) {
  const frames = new FileFrames(fileOf(bytes), chunkBytes);
  return framesOf(() => frames.next());
}

/** Frames, then what a crash or damage leaves: nothing, a cut, zeros, garbage, a flipped bit. */
const damagedFiles = fc
  .tuple(
    fc.array(fc.uint8Array({ minLength: 1, maxLength: 200 }), { maxLength: 6 }),
    fc.oneof(
      fc.constant({ kind: "none" as const }),
      fc.record({ kind: fc.constant("cut" as const), at: fc.nat() }),
      fc.record({ kind: fc.constant("zeros" as const), bytes: fc.integer({ min: 1, max: 300 }) }),
      fc.record({ kind: fc.constant("garbage" as const), bytes: fc.uint8Array({ minLength: 1, maxLength: 40 }) }),
      fc.record({ kind: fc.constant("flip" as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
    ),
  )
  .map(([payloads, damage]) => {
    const frames = payloads.map(encodeFrame);
    let bytes = new Uint8Array(frames.reduce((sum, f) => sum + f.byteLength, 0));
    let at = 0;
    for (const frame of frames) {
      bytes.set(frame, at);
      at += frame.byteLength;
    }
    if (damage.kind === "cut") bytes = bytes.slice(0, damage.at % (bytes.byteLength + 1));
    else if (damage.kind === "zeros" || damage.kind === "garbage") {
      const tail = damage.kind === "zeros" ? new Uint8Array(damage.bytes) : damage.bytes;
      const longer = new Uint8Array(bytes.byteLength + tail.byteLength);
      longer.set(bytes);
      longer.set(tail, bytes.byteLength);
      bytes = longer;
    } else if (damage.kind === "flip" && bytes.byteLength > 0) bytes[damage.at % bytes.byteLength]! ^= 1 << damage.bit;
    return bytes;
  });

describe("FileFrames: a file's frames read a chunk at a time", () => {
  test("answers exactly what readFrame answers over the whole file, whatever the chunk size and the damage", () => {
    fc.assert(
      fc.property(damagedFiles, fc.integer({ min: 1, max: 80 }), (bytes, chunkBytes) => {
        expect(inChunks(bytes, chunkBytes)).toEqual(wholeFile(bytes));
      }),
      { numRuns: 2_000 },
    );
  });

  test("never reads more than a chunk plus the largest frame at a time", () => {
    const payloads = Array.from({ length: 500 }, (_, i) => new Uint8Array(i % 7 === 0 ? 900 : 50).fill(i % 251));
    const bytes = new Uint8Array(payloads.reduce((sum, p) => sum + FRAME_HEADER_BYTES + p.byteLength, 0));
    let at = 0;
    for (const payload of payloads) {
      bytes.set(encodeFrame(payload), at);
      at += FRAME_HEADER_BYTES + payload.byteLength;
    }
    const file = fileOf(bytes);
    const frames = new FileFrames(file, 256);
    const read = framesOf(() => frames.next());
    expect(read.payloads.length).toBe(payloads.length);
    expect(read.stop).toEqual({ kind: "end" });
    expect(file.largestReadBytes).toBeLessThanOrEqual(256 + FRAME_HEADER_BYTES + 900);
  });

  test("a file that turns out shorter than its size said reads as cut there", () => {
    const bytes = encodeFrame(new Uint8Array(100).fill(7));
    const file = { ...fileOf(bytes.subarray(0, 60)), size: bytes.byteLength };
    const frames = new FileFrames(file, 32);
    expect(framesOf(() => frames.next()).stop.kind).toBe("torn");
  });
});

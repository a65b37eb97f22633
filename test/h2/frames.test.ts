import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import {
  DEFAULT_FRAME_PAYLOAD_MAX,
  encodeFrame,
  FLAG,
  FRAME,
  type Frame,
  headerBlockFrames,
  readFrame,
  readFrames,
  readGoaway,
  readSettings,
  SETTING,
  settingsPayload,
  uint32Payload,
  unpad,
} from "../../src/h2/frames.ts";

const plain = (frame: Frame) => ({ ...frame, payload: [...frame.payload] });

describe("frame layout (RFC 9113, 4.1)", () => {
  test("a frame is length (3), type, flags, stream id (4, reserved bit clear), payload", () => {
    const bytes = encodeFrame(FRAME.WINDOW_UPDATE, 0, 0x8000_0003, uint32Payload(0x0102_0304));
    expect([...bytes]).toEqual([0, 0, 4, 0x8, 0, 0, 0, 0, 3, 1, 2, 3, 4]);
  });

  test("property: frames written back to back read back as they were, a cut-off last one left out", () => {
    const frameArb = fc.record({
      type: fc.integer({ min: 0, max: 255 }),
      flags: fc.integer({ min: 0, max: 255 }),
      streamId: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      payload: fc.uint8Array({ maxLength: 300 }),
    });
    fc.assert(
      fc.property(fc.array(frameArb, { maxLength: 8 }), fc.nat(), (frames, cut) => {
        const bytes = Buffer.concat(frames.map((f) => encodeFrame(f.type, f.flags, f.streamId, f.payload)));
        const expected = frames.map((f) => ({ ...f, payload: [...f.payload] }));
        expect(readFrames(bytes).map(plain)).toEqual(expected);
        if (bytes.length === 0) return;
        const short = bytes.subarray(0, bytes.length - 1 - (cut % Math.min(bytes.length, 9)));
        expect(readFrames(short).map(plain)).toEqual(expected.slice(0, -1));
      }),
    );
  });

  test("readFrame says undefined until a whole frame is there", () => {
    const bytes = encodeFrame(FRAME.PING, 0, 0, new Uint8Array(8));
    for (let end = 0; end < bytes.length; end++) expect(readFrame(bytes.subarray(0, end), 0)).toBeUndefined();
    expect(readFrame(bytes, 0)?.type).toBe(FRAME.PING);
  });
});

describe("header blocks", () => {
  test("one HEADERS frame carries END_STREAM and END_HEADERS when the block fits", () => {
    const frames = readFrames(Buffer.concat(headerBlockFrames(5, new Uint8Array(10), true)));
    expect(frames.map((f) => [f.type, f.flags, f.streamId, f.payload.length])).toEqual([
      [FRAME.HEADERS, FLAG.END_STREAM | FLAG.END_HEADERS, 5, 10],
    ]);
  });

  test("a longer block goes on in CONTINUATION frames; END_STREAM stays on HEADERS, END_HEADERS moves to the last", () => {
    const block = Uint8Array.from({ length: 2 * DEFAULT_FRAME_PAYLOAD_MAX + 1 }, (_, i) => i % 251);
    const frames = readFrames(Buffer.concat(headerBlockFrames(7, block, true)));
    expect(frames.map((f) => [f.type, f.flags, f.payload.length])).toEqual([
      [FRAME.HEADERS, FLAG.END_STREAM, DEFAULT_FRAME_PAYLOAD_MAX],
      [FRAME.CONTINUATION, 0, DEFAULT_FRAME_PAYLOAD_MAX],
      [FRAME.CONTINUATION, FLAG.END_HEADERS, 1],
    ]);
    expect(Buffer.concat(frames.map((f) => f.payload))).toEqual(Buffer.from(block));
  });

  test("an empty block is still one HEADERS frame", () => {
    expect(readFrames(Buffer.concat(headerBlockFrames(1, new Uint8Array(0), false))).map((f) => f.flags)).toEqual([
      FLAG.END_HEADERS,
    ]);
  });
});

describe("payloads", () => {
  test("SETTINGS round-trip; a trailing partial entry is ignored", () => {
    const settings: [number, number][] = [
      [SETTING.ENABLE_PUSH, 0],
      [SETTING.INITIAL_WINDOW_SIZE, 2 ** 31 - 1],
    ];
    const payload = settingsPayload(settings);
    expect(payload.length).toBe(12);
    expect(readSettings(payload)).toEqual(settings);
    expect(readSettings(Buffer.concat([payload, Buffer.from([0, 1, 0])]))).toEqual(settings);
  });

  test("GOAWAY: last stream id (reserved bit clear), error code, debug data", () => {
    const payload = Buffer.concat([uint32Payload(0x8000_0009), uint32Payload(1), Buffer.from("bye", "latin1")]);
    expect(readGoaway(payload)).toEqual({ lastStreamId: 9, errorCode: 1, debug: "bye" });
  });

  test("padding is stripped only when PADDED says so, and padding longer than the frame is refused", () => {
    const padded = Buffer.from([2, 0xaa, 0xbb, 0, 0]);
    expect([...unpad(padded, FLAG.PADDED)]).toEqual([0xaa, 0xbb]);
    expect(unpad(padded, 0)).toBe(padded);
    expect(() => unpad(Buffer.from([4, 1, 2, 3]), FLAG.PADDED)).toThrow(/padding/);
  });
});

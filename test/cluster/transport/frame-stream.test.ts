import { describe, expect, test } from "bun:test";
import { FrameStreamReader, type StreamRead } from "../../../src/cluster/transport/frame-stream.ts";
import { encodeFrame, FRAME_HEADER_BYTES } from "../../../src/io/format/frame.ts";
import { bytes, text } from "../../helpers/bytes.ts";

const LIMIT = 1_000;

/** Pushes `chunks` one by one and collects what the reader gives after each, as a TCP reader would. */
function readAll(chunks: Uint8Array[], limit = LIMIT): { payloads: string[]; last: StreamRead } {
  const reader = new FrameStreamReader();
  const payloads: string[] = [];
  let last: StreamRead = { kind: "more" };
  for (const chunk of chunks) {
    reader.push(chunk);
    for (let i = 0; i < 1_000; i++) {
      last = reader.next(limit);
      if (last.kind !== "frame") break;
      payloads.push(text(last.payload)!);
    }
    if (last.kind === "corrupt" || last.kind === "oversized") break;
  }
  return { payloads, last };
}

function concat(parts: Uint8Array[]): Uint8Array {
  return new Uint8Array(Buffer.concat(parts));
}

/** `bytes` cut at each of `cuts` (offsets, ascending). */
function split(whole: Uint8Array, cuts: number[]): Uint8Array[] {
  const edges = [0, ...cuts, whole.byteLength];
  return edges.slice(1).map((end, i) => whole.subarray(edges[i]!, end));
}

describe("FrameStreamReader", () => {
  const stream = concat(["one", "two", "", "three"].map((word) => encodeFrame(bytes(word))));

  test("reads frames joined in one read", () => {
    expect(readAll([stream]).payloads).toEqual(["one", "two", "", "three"]);
  });

  test("reads frames split across reads at every byte", () => {
    for (let cut = 1; cut < stream.byteLength; cut++) {
      expect(readAll(split(stream, [cut])).payloads).toEqual(["one", "two", "", "three"]);
    }
    expect(
      readAll(
        split(
          stream,
          Array.from({ length: stream.byteLength - 1 }, (_, i) => i + 1),
        ),
      ).payloads,
    ).toEqual(["one", "two", "", "three"]);
  });

  test("a payload does not share its buffer with the read it came in", () => {
    const reader = new FrameStreamReader();
    reader.push(stream);
    const first = reader.next(LIMIT);
    expect(first.kind).toBe("frame");
    if (first.kind === "frame") expect(first.payload.buffer).not.toBe(stream.buffer);
  });

  test("a flipped payload byte is corrupt", () => {
    const damaged = stream.slice();
    damaged[FRAME_HEADER_BYTES] = damaged[FRAME_HEADER_BYTES]! ^ 1;
    expect(readAll([damaged]).last.kind).toBe("corrupt");
  });

  test("garbage is corrupt as soon as a header's worth has come", () => {
    const garbage = bytes("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
    expect(readAll([garbage.subarray(0, FRAME_HEADER_BYTES - 1)]).last.kind).toBe("more");
    expect(readAll([garbage]).last.kind).toBe("corrupt");
  });

  test("zeros are corrupt on a stream (in a file they would be a torn write)", () => {
    expect(readAll([new Uint8Array(FRAME_HEADER_BYTES)]).last.kind).toBe("corrupt");
    // A whole frame whose payload is zeros and fails its checksum.
    const zeroed = encodeFrame(bytes("abc"));
    zeroed.fill(0, FRAME_HEADER_BYTES);
    expect(readAll([zeroed]).last.kind).toBe("corrupt");
  });

  test("a frame over the limit is refused from its header, before its payload comes", () => {
    const big = encodeFrame(new Uint8Array(LIMIT + 1).fill(7));
    expect(readAll([big.subarray(0, FRAME_HEADER_BYTES)]).last.kind).toBe("oversized");
    expect(readAll([big]).last.kind).toBe("oversized");
    expect(readAll([encodeFrame(new Uint8Array(LIMIT).fill(7))]).payloads).toHaveLength(1);
  });

  test("waits for a large frame's bytes without parsing each read", () => {
    const payload = new Uint8Array(200_000).map((_, i) => i % 251);
    const frame = encodeFrame(payload);
    const reader = new FrameStreamReader();
    const reads: StreamRead["kind"][] = [];
    for (const chunk of split(frame, [5, 12, 1_000, 65_536, 131_072])) {
      reader.push(chunk);
      const read = reader.next(payload.byteLength);
      reads.push(read.kind);
      if (read.kind === "frame") expect(read.payload).toEqual(payload);
    }
    expect(reads).toEqual(["more", "more", "more", "more", "more", "frame"]);
  });
});

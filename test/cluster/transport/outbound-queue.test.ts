import { describe, expect, test } from "bun:test";
import { FrameStreamReader } from "../../../src/cluster/transport/frame-stream.ts";
import { OutboundQueue } from "../../../src/cluster/transport/outbound-queue.ts";
import { FRAME_HEADER_BYTES } from "../../../src/io/format/frame.ts";
import { bytes, text } from "../../helpers/bytes.ts";

/** The frames in `written`, as text. */
function framesIn(written: Uint8Array[]): string[] {
  const reader = new FrameStreamReader();
  for (const chunk of written) reader.push(chunk);
  const out: string[] = [];
  for (let i = 0; i < 100; i++) {
    const read = reader.next(1 << 20);
    if (read.kind !== "frame") break;
    out.push(text(read.payload)!);
  }
  return out;
}

describe("OutboundQueue", () => {
  test("the worked example of its comment", () => {
    const queue = new OutboundQueue(100, 10_000);
    for (const word of ["a", "b", "c"]) expect(queue.push(bytes(word))).toBe(true);
    const batch = queue.nextWrite()!;
    expect(batch.byteLength).toBe(3 * (FRAME_HEADER_BYTES + 1));
    // The socket takes 20 bytes: a's frame (13) and part of b's.
    expect(queue.wrote(20)).toBe(1);
    expect(queue.payloads).toBe(2);
    expect(queue.bytes).toBe(batch.byteLength - 20);
    queue.push(bytes("d"));
    const rest = queue.nextWrite()!;
    expect(rest.byteLength).toBe(batch.byteLength - 20);
    expect(queue.wrote(rest.byteLength)).toBe(2);
    const next = queue.nextWrite()!;
    expect(queue.wrote(next.byteLength)).toBe(1);
    expect(queue.nextWrite()).toBeUndefined();
    expect(framesIn([batch.subarray(0, 20), rest, next])).toEqual(["a", "b", "c", "d"]);
  });

  test("bounds payloads and bytes, counting the unwritten batch", () => {
    const byCount = new OutboundQueue(2, 10_000);
    expect([byCount.push(bytes("1")), byCount.push(bytes("2")), byCount.push(bytes("3"))]).toEqual([true, true, false]);
    byCount.nextWrite();
    expect(byCount.push(bytes("3"))).toBe(false);
    byCount.wrote(FRAME_HEADER_BYTES + 1);
    expect(byCount.push(bytes("3"))).toBe(true);

    const byBytes = new OutboundQueue(100, 2 * (FRAME_HEADER_BYTES + 4));
    expect([byBytes.push(bytes("four")), byBytes.push(bytes("four")), byBytes.push(bytes("x"))]).toEqual([
      true,
      true,
      false,
    ]);
  });

  test("a batch cut by a lost connection is dropped whole, the queue behind it kept", () => {
    const queue = new OutboundQueue(100, 10_000);
    queue.push(bytes("a"));
    queue.push(bytes("b"));
    queue.nextWrite();
    // 5 bytes of the batch went out: not even a's frame whole.
    expect(queue.wrote(5)).toBe(0);
    queue.push(bytes("c"));
    expect(queue.dropBatch()).toBe(2);
    expect(framesIn([queue.nextWrite()!])).toEqual(["c"]);
    expect(queue.clear()).toBe(1);
    expect(queue.payloads).toBe(0);
  });
});

import { expect, test } from "bun:test";
import { type FrameSocket, Output } from "../../../src/server/h2/output.ts";

/**
 * What a connection's Output promises its socket: every frame pushed in one event-loop turn — from
 * the turn's I/O callbacks and the microtasks they run — goes out in one socket write per
 * connection, in order; the rest of a write the socket did not take waits for its drain, with
 * what was pushed meanwhile queued behind it. Output takes its socket as an interface for this:
 * the socket here records each write, as Bun's would take it, and takes as much as it is told to.
 */

/** A socket that records its writes and takes at most `takes` bytes of each. */
class RecordingSocket implements FrameSocket {
  readonly writes: Buffer[] = [];
  takes = Number.POSITIVE_INFINITY;

  write(data: Uint8Array): number {
    const taken = Math.min(data.byteLength, this.takes);
    this.writes.push(Buffer.from(data.subarray(0, taken)));
    return taken;
  }

  get written(): Buffer {
    return Buffer.concat(this.writes);
  }
}

/** Resolves after the flush the frames pushed so far scheduled (setImmediate callbacks run in order). */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));
const frame = (byte: number, length = 9) => Buffer.alloc(length, byte);

test("frames pushed in one turn, then in the microtasks it runs, go out in one socket write per connection, in order", async () => {
  const sockets = [new RecordingSocket(), new RecordingSocket()];
  const outputs = sockets.map((socket) => new Output(socket, () => {}));
  for (let i = 0; i < 64; i++) outputs[i % 2]!.push(frame(i));
  // Answers that handlers give in microtasks, as unary replies do.
  await Promise.all(
    Array.from({ length: 64 }, (_, i) => Promise.resolve().then(() => outputs[i % 2]!.push(frame(64 + i)))),
  );
  expect(sockets.map((socket) => socket.writes.length)).toEqual([0, 0]);
  await nextTurn();
  for (const [n, socket] of sockets.entries()) {
    expect(socket.writes).toHaveLength(1);
    const expected = Array.from({ length: 128 }, (_, i) => i).filter((i) => i % 2 === n);
    expect(socket.written).toEqual(Buffer.concat(expected.map((i) => frame(i))));
  }
  expect(outputs.map((output) => output.pendingBytes)).toEqual([0, 0]);

  outputs[0]!.push(frame(200));
  outputs[0]!.push(frame(201));
  await nextTurn();
  expect(sockets[0]!.writes).toHaveLength(2);
  expect(sockets[0]!.writes[1]).toEqual(Buffer.concat([frame(200), frame(201)]));
  expect(sockets[1]!.writes).toHaveLength(1);
});

test("what the socket did not take waits for its drain, frames pushed meanwhile behind it; drained, both go and the connection hears of it", async () => {
  const socket = new RecordingSocket();
  let drained = 0;
  const output = new Output(socket, () => drained++);
  const taken: string[] = [];
  socket.takes = 10;
  output.push(frame(1, 8));
  output.push(frame(2, 8));
  output.whenTaken(() => taken.push("first two"));
  await nextTurn();
  expect(socket.writes).toEqual([Buffer.concat([frame(1, 8), frame(2, 2)])]);
  expect(output.pendingBytes).toBe(6);
  expect(taken).toEqual([]);

  // Turns pass, frames come: nothing is written before the socket drains.
  output.push(frame(3, 4));
  await nextTurn();
  output.push(frame(4, 4));
  output.whenTaken(() => taken.push("all four"));
  await nextTurn();
  expect(socket.writes).toHaveLength(1);
  expect(output.pendingBytes).toBe(14);

  socket.takes = Number.POSITIVE_INFINITY;
  output.drain();
  expect(socket.writes.slice(1)).toEqual([frame(2, 6), Buffer.concat([frame(3, 4), frame(4, 4)])]);
  expect(output.pendingBytes).toBe(0);
  expect(taken).toEqual(["first two", "all four"]);
  expect(drained).toBe(1);

  // A drain that finds the socket full again leaves the rest for the next, and says nothing yet.
  socket.takes = 3;
  output.push(frame(5, 8));
  await nextTurn();
  socket.takes = 0;
  output.drain();
  expect(drained).toBe(1);
  expect(output.pendingBytes).toBe(5);
  socket.takes = Number.POSITIVE_INFINITY;
  output.drain();
  expect(drained).toBe(2);
  expect(socket.written).toEqual(Buffer.concat([frame(1, 8), frame(2, 8), frame(3, 4), frame(4, 4), frame(5, 8)]));
});

test("a closed output writes nothing more and drops what it held", async () => {
  const socket = new RecordingSocket();
  const output = new Output(socket, () => {});
  output.push(frame(1));
  output.close();
  output.push(frame(2));
  await nextTurn();
  expect(socket.writes).toEqual([]);
});

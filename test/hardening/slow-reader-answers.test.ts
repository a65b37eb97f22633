import { expect, test } from "bun:test";
import { GetRequest, GetResponse } from "../../src/gen/homekv_service.ts";
import {
  ERROR_CODE,
  encodeFrame,
  FLAG,
  FRAME,
  PREFACE,
  readFrames,
  SETTING,
  settingsPayload,
  uint32Payload,
  WINDOW_BYTES_MAX,
} from "../../src/h2/frames.ts";
import { GRPC_MESSAGE_PREFIX_BYTES } from "../../src/h2/grpc-message.ts";
import { TEST_GRPC_SERVER } from "../helpers/processes.ts";
import { clientPreface, connectRaw, grpcCallFrames } from "../helpers/raw-h2.ts";
import { expectCleanServerLog, expectNoStackTrace, expectServes, probeRss, useTarget } from "./harness.ts";

/**
 * Unary answers for clients that stop reading them. The native server holds at most
 * H2_LIMITS.outputBytesMax (64 MiB) of answers per connection — waiting for flow-control window, or
 * written and not taken by the socket — and resets the streams whose answers do not fit
 * (RST_STREAM ENHANCE_YOUR_CALM), so that a client cannot make it hold more by asking and not
 * reading; everyone else is served meanwhile. The answers it kept arrive whole once the client reads.
 * (grpc-js has no such bound of its own: the test is the native server's.)
 */

const GET = "/homekv_service.HomeKvService/Get";
const MIB = 1024 * 1024;
const CALLS = 150;
const server = useTarget();

/** What a raw client got on its streams: the reset ones, and the answers that ended with their status. */
function outcome(received: Buffer): { resets: Map<number, number>; answers: Map<number, Buffer> } {
  const resets = new Map<number, number>();
  const data = new Map<number, Buffer[]>();
  const answers = new Map<number, Buffer>();
  for (const frame of readFrames(received)) {
    if (frame.type === FRAME.RST_STREAM) resets.set(frame.streamId, frame.payload.readUInt32BE(0));
    else if (frame.type === FRAME.DATA) data.set(frame.streamId, [...(data.get(frame.streamId) ?? []), frame.payload]);
    else if (frame.type === FRAME.HEADERS && frame.flags & FLAG.END_STREAM)
      answers.set(frame.streamId, Buffer.concat(data.get(frame.streamId) ?? []));
  }
  return { resets, answers };
}

/** Every answer is one whole GetResponse carrying the 1 MiB value, and every reset says ENHANCE_YOUR_CALM. */
function expectWholeAnswersAndCalmResets({ resets, answers }: ReturnType<typeof outcome>): void {
  for (const code of resets.values()) expect(code).toBe(ERROR_CODE.ENHANCE_YOUR_CALM);
  for (const [id, body] of answers) {
    expect(resets.has(id)).toBe(false);
    expect(body.readUInt32BE(1)).toBe(body.length - GRPC_MESSAGE_PREFIX_BYTES);
    expect(GetResponse.decode(body.subarray(GRPC_MESSAGE_PREFIX_BYTES)).records[0]!.value).toHaveLength(MIB);
  }
}

test.skipIf(TEST_GRPC_SERVER === "grpc-js")(
  "two clients ask for 150 answers of 1 MiB each and read none: at most 64 MiB held for each, the rest reset; others served; the kept answers arrive whole",
  async () => {
    await server.client.set({ big: new Uint8Array(MIB).fill(7) });
    const get = GetRequest.encode(GetRequest.fromPartial({ keys: ["big"] })).finish();
    const requests = Array.from({ length: CALLS }, (_, i) => grpcCallFrames(1 + 2 * i, GET, get));
    const openWindows = Buffer.concat([
      encodeFrame(FRAME.SETTINGS, 0, 0, settingsPayload([[SETTING.INITIAL_WINDOW_SIZE, WINDOW_BYTES_MAX]])),
      encodeFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32Payload(WINDOW_BYTES_MAX - 65_535)),
    ]);
    const probe = probeRss(server.proc.pid);

    // One gives all the window there is and does not read its socket: answers wait in the server's output.
    const noRead = await connectRaw(server.port, { read: false });
    noRead.write(Buffer.concat([PREFACE, openWindows, encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0), ...requests]));
    // One reads its socket but gives no window: answers wait in their streams.
    const noWindow = await connectRaw(server.port, { read: true });
    noWindow.write(Buffer.concat([clientPreface(), encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0), ...requests]));

    // Each stream gets its response headers, and the reset if its answer did not fit, in the same write.
    const headed = (received: Buffer) => readFrames(received).filter((frame) => frame.type === FRAME.HEADERS).length;
    expect(await noWindow.waitUntil((received) => headed(received) === CALLS, 20_000)).toBe(true);
    const { resets } = outcome(noWindow.received());
    const kept = CALLS - resets.size;
    console.log(`answers kept for the client that gives no window: ${kept} of ${CALLS}`);
    expect(kept).toBeGreaterThan(0);
    expect(kept).toBeLessThanOrEqual(64);
    await expectServes(server, "two clients that do not read 150 MiB of answers each");
    expect((await server.client.get(["big"])).records[0]!.value).toHaveLength(MIB);
    probe.mark("two clients asked for 150 answers of 1 MiB each and read none");

    // The one that did not read reads at last: its answers were decided while it did not.
    noRead.socket.resume();
    const decided = (received: Buffer) => {
      const seen = outcome(received);
      return seen.resets.size + seen.answers.size === CALLS;
    };
    expect(await noRead.waitUntil(decided, 20_000)).toBe(true);
    const unread = outcome(noRead.received());
    console.log(`answers kept for the client that did not read: ${unread.answers.size} of ${CALLS}`);
    // 64 MiB in the server's output, plus what the kernel's socket buffers took (a few MiB on loopback).
    expect(unread.answers.size).toBeLessThanOrEqual(64 + 16);
    expect(unread.answers.size).toBeGreaterThan(0);
    expectWholeAnswersAndCalmResets(unread);

    // The one that gave no window gives it: every answer kept arrives whole, then its status.
    noWindow.write(openWindows);
    expect(await noWindow.waitUntil((received) => outcome(received).answers.size === kept, 20_000)).toBe(true);
    expectWholeAnswersAndCalmResets(outcome(noWindow.received()));
    expectNoStackTrace(noWindow.received().toString("latin1"));

    noWindow.destroy();
    noRead.destroy();
    probe.stop("two clients that asked for 150 answers of 1 MiB each, then closed");
    await expectServes(server, "clients that did not read their answers, closed");
    expectCleanServerLog(server);
  },
  60_000,
);

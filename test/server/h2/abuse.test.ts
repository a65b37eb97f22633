import { describe, expect, test } from "bun:test";
import { WatchRequest } from "../../../src/gen/homekv_service.ts";
import {
  ERROR_CODE,
  encodeFrame,
  FLAG,
  FRAME,
  type Frame,
  readFrames,
  readGoaway,
  uint32Payload,
} from "../../../src/h2/frames.ts";
import { encodeLiterals } from "../../../src/h2/hpack.ts";
import { H2_LIMITS } from "../../../src/server/h2/settings.ts";
import { expectCleanServerLog, expectServes, useTarget } from "../../hardening/harness.ts";
import { grpcCallFrames, grpcRequestHeaders, openRawSession, type RawConnection } from "../../helpers/raw-h2.ts";

/**
 * The native server (src/server/h2) against clients that abuse HTTP/2 itself, in raw frames: each
 * is answered as RFC 9113 says (a stream error or GOAWAY with the code named), within the budgets of
 * src/server/h2/settings.ts, and the server goes on serving everyone else.
 */

const server = useTarget(["--grpc-server", "native"]);
const WATCH = "/homekv_service.HomeKvService/Watch";
const GET = "/homekv_service.HomeKvService/Get";

function goawayOf(connection: RawConnection): ReturnType<typeof readGoaway> | undefined {
  const frame = readFrames(connection.received()).find((f) => f.type === FRAME.GOAWAY);
  return frame && readGoaway(frame.payload);
}

/** Sends `bytes`, then waits for the server to close the connection; its GOAWAY. */
async function refusedWith(bytes: Buffer): Promise<ReturnType<typeof readGoaway> | undefined> {
  const connection = await openRawSession(server.port);
  connection.write(bytes);
  expect(await connection.waitClosed(5_000)).toBe(true);
  return goawayOf(connection);
}

const resetOf = (frames: Frame[], streamId: number) =>
  frames.find((f) => f.type === FRAME.RST_STREAM && f.streamId === streamId)?.payload.readUInt32BE(0);

describe("the native server against HTTP/2 abuse", () => {
  test("rapid reset (CVE-2023-44487): streams opened and reset past the budget end the connection with ENHANCE_YOUR_CALM", async () => {
    const count = H2_LIMITS.resets.burst + 500;
    const frames: Buffer[] = [];
    const headers = encodeLiterals(grpcRequestHeaders(GET));
    for (let i = 0; i < count; i++) {
      const id = 1 + 2 * i;
      frames.push(encodeFrame(FRAME.HEADERS, FLAG.END_HEADERS, id, headers));
      frames.push(encodeFrame(FRAME.RST_STREAM, 0, id, uint32Payload(ERROR_CODE.CANCEL)));
    }
    expect(await refusedWith(Buffer.concat(frames))).toMatchObject({
      errorCode: ERROR_CODE.ENHANCE_YOUR_CALM,
      debug: "too many streams reset",
    });
    await expectServes(server, "rapid reset");
  });

  test("SETTINGS and PING floods end the connection with ENHANCE_YOUR_CALM", async () => {
    const count = H2_LIMITS.controlFrames.burst + 1_000;
    const settings = Buffer.concat(Array.from({ length: count }, () => encodeFrame(FRAME.SETTINGS, 0, 0)));
    const pings = Buffer.concat(Array.from({ length: count }, () => encodeFrame(FRAME.PING, 0, 0, Buffer.alloc(8))));
    for (const flood of [settings, pings]) {
      expect(await refusedWith(flood)).toMatchObject({
        errorCode: ERROR_CODE.ENHANCE_YOUR_CALM,
        debug: "too many control frames",
      });
    }
    await expectServes(server, "SETTINGS and PING floods");
  });

  test("a frame over SETTINGS_MAX_FRAME_SIZE is FRAME_SIZE_ERROR; a window past 2^31-1 FLOW_CONTROL_ERROR", async () => {
    const oversized = encodeFrame(FRAME.DATA, 0, 1, Buffer.alloc(H2_LIMITS.framePayloadMax + 1));
    expect((await refusedWith(oversized))?.errorCode).toBe(ERROR_CODE.FRAME_SIZE_ERROR);
    const overflow = encodeFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32Payload(2 ** 31 - 1));
    expect((await refusedWith(overflow))?.errorCode).toBe(ERROR_CODE.FLOW_CONTROL_ERROR);
    await expectServes(server, "oversized frames");
  });

  test("streams beyond MAX_CONCURRENT_STREAMS are refused (REFUSED_STREAM); the open ones go on", async () => {
    const connection = await openRawSession(server.port);
    const watch = WatchRequest.encode(WatchRequest.fromPartial({ key: "abuse/streams" })).finish();
    const open = H2_LIMITS.concurrentStreamsMax;
    const calls = Array.from({ length: open + 2 }, (_, i) => grpcCallFrames(1 + 2 * i, WATCH, watch));
    connection.write(Buffer.concat(calls));
    const extra = [1 + 2 * open, 3 + 2 * open];
    const refused = (received: Buffer) => extra.every((id) => resetOf(readFrames(received), id) !== undefined);
    expect(await connection.waitUntil(refused, 5_000)).toBe(true);
    const frames = readFrames(connection.received());
    for (const id of extra) expect(resetOf(frames, id)).toBe(ERROR_CODE.REFUSED_STREAM);
    expect(resetOf(frames, 1)).toBeUndefined();
    expect(goawayOf(connection)).toBeUndefined();
    // A write reaches the watch on stream 1, which is still open.
    await server.client.set({ "abuse/streams": "seen" });
    const delivered = (received: Buffer) =>
      readFrames(received).some((f) => f.streamId === 1 && f.type === FRAME.DATA && f.payload.length > 5);
    expect(await connection.waitUntil(delivered, 5_000)).toBe(true);
    connection.destroy();
    await expectServes(server, "too many streams");
    expectCleanServerLog(server);
  });
});

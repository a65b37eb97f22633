import { describe, expect, test } from "bun:test";
import { GetRequest, GetResponse, WatchRequest } from "../../src/gen/homekv_service.ts";
import { ERROR_CODE, encodeFrame, FLAG, FRAME, readFrames, readGoaway, uint32Payload } from "../../src/h2/frames.ts";
import { GRPC_MESSAGE_PREFIX_BYTES } from "../../src/h2/grpc-message.ts";
import { H2_LIMITS } from "../../src/server/h2/settings.ts";
import { text } from "../helpers/bytes.ts";
import { countFrames, grpcCallFrames, openRawSession } from "../helpers/raw-h2.ts";
import { waitForWatchers } from "../helpers/server.ts";
import { waitFor } from "../helpers/wait.ts";
import {
  expectCleanServerLog,
  expectNoStackTrace,
  expectRssWithin,
  expectServes,
  probeRss,
  useTarget,
} from "./harness.ts";

/**
 * MadeYouReset (CVE-2025-8671): a client that has the server reset its streams — a stream error of
 * its making, right after the call started — starts and kills calls as fast as with its own
 * RST_STREAM, the rapid reset of CVE-2023-44487. The native server counts the resets it sends for
 * the client's errors against the same budget (H2_LIMITS.resets) and ends the connection past it
 * with GOAWAY ENHANCE_YOUR_CALM; calls that end with an error status or a deadline are not resets
 * and are not counted. Before, 5,000 Watch calls started and killed so got 5,000 RST_STREAM and no
 * GOAWAY.
 */

const server = useTarget(["--grpc-server", "native"], { each: true });
const WATCH = "/homekv_service.HomeKvService/Watch";
const GET = "/homekv_service.HomeKvService/Get";

describe("streams the server resets for the client's errors", () => {
  test("5,000 Watch calls, each reset by the server at once (a WINDOW_UPDATE of 0, or DATA after END_STREAM): GOAWAY ENHANCE_YOUR_CALM past the rapid-reset budget", async () => {
    const probe = probeRss(server.proc.pid);
    // The budget refills from the connection's start: the time counted runs from before it.
    const started = performance.now();
    const connection = await openRawSession(server.port);
    const watch = WatchRequest.encode(WatchRequest.fromPartial({ prefix: "made-you-reset/" })).finish();
    const calls = 5_000;
    const frames: Buffer[] = [];
    for (let i = 0; i < calls; i++) {
      const id = 1 + 2 * i;
      frames.push(grpcCallFrames(id, WATCH, watch));
      // Stream errors (RFC 9113, 6.9 and 5.1): each has the server reset the Watch it just started.
      frames.push(
        i % 2 === 0
          ? encodeFrame(FRAME.WINDOW_UPDATE, 0, id, uint32Payload(0))
          : encodeFrame(FRAME.DATA, 0, id, Buffer.alloc(1)),
      );
    }
    connection.write(Buffer.concat(frames));
    expect(await connection.waitClosed(10_000)).toBe(true);
    const seconds = (performance.now() - started) / 1000;
    const received = readFrames(connection.received());
    const goaway = received.find((f) => f.type === FRAME.GOAWAY);
    expect(goaway && readGoaway(goaway.payload)).toMatchObject({
      errorCode: ERROR_CODE.ENHANCE_YOUR_CALM,
      debug: "too many streams reset",
    });
    const resets = received.filter((f) => f.type === FRAME.RST_STREAM);
    const streamErrors: number[] = [ERROR_CODE.PROTOCOL_ERROR, ERROR_CODE.STREAM_CLOSED];
    console.log(`streams reset by the server before its GOAWAY: ${resets.length} in ${seconds.toFixed(2)} s`);
    expect(resets.length).toBeGreaterThanOrEqual(H2_LIMITS.resets.burst);
    expect(resets.length).toBeLessThanOrEqual(H2_LIMITS.resets.burst + Math.ceil(seconds * H2_LIMITS.resets.perSecond));
    for (const reset of resets) {
      expect(streamErrors).toContain(reset.payload.readUInt32BE(0));
    }
    expectNoStackTrace(connection.received().toString("latin1"));
    // The calls that were running when the connection ended end with it.
    await waitForWatchers(server.client, 0);
    const after = probe.stop("5,000 Watch calls started and reset by the server");
    expectRssWithin(probe, after, 32);
    await expectServes(server, "Watch calls reset by the server");
    expectCleanServerLog(server);
  }, 30_000);

  test("calls that end with an error status or their deadline are not resets: 2,000 of each on one connection, no GOAWAY, it still serves", async () => {
    const connection = await openRawSession(server.port);
    const answered = countFrames(
      connection.socket,
      (type, flags) => type === FRAME.HEADERS && (flags & FLAG.END_STREAM) !== 0,
    );
    const ended = countFrames(connection.socket, (type) => type === FRAME.RST_STREAM || type === FRAME.GOAWAY);
    // A Get of the empty key ends with INVALID_ARGUMENT; a Watch with a deadline of 1 ms, with
    // DEADLINE_EXCEEDED once it passes. Each twice the rapid-reset burst, 500 calls at a time.
    const badGet = GetRequest.encode(GetRequest.fromPartial({ keys: [""] })).finish();
    const watch = WatchRequest.encode(WatchRequest.fromPartial({ prefix: "deadline/" })).finish();
    const perKind = 2 * H2_LIMITS.resets.burst;
    const batch = 500;
    let id = 1;
    for (let done = 0; done < 2 * perKind; done += batch) {
      const calls = Array.from({ length: batch }, () => {
        const call =
          done < perKind ? grpcCallFrames(id, GET, badGet) : grpcCallFrames(id, WATCH, watch, [["grpc-timeout", "1m"]]);
        id += 2;
        return call;
      });
      connection.write(Buffer.concat(calls));
      await waitFor(() => answered.count >= done + batch || ended.count > 0, {
        what: `the answers to ${done + batch} calls`,
        detail: () => `${answered.count} answered, ${ended.count} RST_STREAM or GOAWAY`,
      });
      expect(ended.count).toBe(0);
    }
    // The connection still serves: a Get of a key that is there.
    await server.client.set({ "deadline/k": "v" });
    const get = GetRequest.encode(GetRequest.fromPartial({ keys: ["deadline/k"] })).finish();
    connection.write(grpcCallFrames(id, GET, get));
    const answer = (received: Buffer) =>
      readFrames(received).some(
        (f) =>
          f.streamId === id &&
          f.type === FRAME.DATA &&
          text(GetResponse.decode(f.payload.subarray(GRPC_MESSAGE_PREFIX_BYTES)).records[0]?.value) === "v",
      );
    expect(await connection.waitUntil(answer, 5_000)).toBe(true);
    expect(ended.count).toBe(0);
    expect(connection.closed).toBe(false);
    connection.destroy();
    await expectServes(server, "calls that ended with errors and deadlines");
    expectCleanServerLog(server);
  }, 30_000);
});

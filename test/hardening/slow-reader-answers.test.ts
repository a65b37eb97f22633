import { expect, test } from "bun:test";
import { HomeKvClient } from "../../src/client/client.ts";
import { GetRequest, GetResponse } from "../../src/gen/homekv_service.ts";
import {
  ERROR_CODE,
  encodeFrame,
  FLAG,
  FRAME,
  PREFACE,
  SETTING,
  settingsPayload,
  uint32Payload,
  WINDOW_BYTES_MAX,
} from "../../src/h2/frames.ts";
import { GRPC_MESSAGE_PREFIX_BYTES } from "../../src/h2/grpc-message.ts";
import { H2_LIMITS } from "../../src/server/h2/settings.ts";
import { TEST_GRPC_SERVER } from "../helpers/processes.ts";
import { clientPreface, connectRaw, grpcCallFrames, type StreamTally, tallyStreams } from "../helpers/raw-h2.ts";
import { waitFor } from "../helpers/wait.ts";
import { expectCleanServerLog, expectNoStackTrace, expectServes, probeRss, useTarget } from "./harness.ts";

/**
 * Unary answers for clients that ask and do not read them. The native server has at most
 * H2_LIMITS.handlersRunningMax unary calls under way per connection, each counted until its answer
 * has been taken by the socket, and starts none while the answers it holds — waiting for
 * flow-control window, or written and not taken — have reached H2_LIMITS.outputBytesMax; the other
 * calls wait their turn without running. So a client that asks and does not read makes the server
 * build no more answers than it holds (before: every answer was built and serialized, then the
 * bound refused it: 86 of 150 reset, the RSS 850 MiB over the start); everyone else is served
 * meanwhile, and every call is answered, whole, once the client reads. (grpc-js has no such bound:
 * the first test is the native server's.)
 */

const GET = "/homekv_service.HomeKvService/Get";
const MIB = 1024 * 1024;
const CALLS = 150;
/**
 * The RSS the two clients may add: the 128 answers of 1 MiB the server holds for them, and the
 * garbage of building them (the value read out of the store, the encoded message, the copy a
 * socket's single write per turn makes): 320 MiB measured. Before, with every answer built, most
 * of them then refused, it peaked 840–880 MiB over the start.
 */
const PEAK_OVER_START_MAX = 400 * MIB;
const server = useTarget();

/** Every answer is one whole GetResponse carrying the 1 MiB value, and every reset says ENHANCE_YOUR_CALM. */
function expectWholeAnswersAndCalmResets({ resets, answers }: StreamTally): void {
  for (const code of resets.values()) expect(code).toBe(ERROR_CODE.ENHANCE_YOUR_CALM);
  for (const [id, body] of answers) {
    expect(resets.has(id)).toBe(false);
    expect(body.readUInt32BE(1)).toBe(body.length - GRPC_MESSAGE_PREFIX_BYTES);
    expect(GetResponse.decode(body.subarray(GRPC_MESSAGE_PREFIX_BYTES)).records[0]!.value).toHaveLength(MIB);
  }
}

/** Every call of the client ended: answered, or reset. */
async function waitDecided(tally: StreamTally, who: string): Promise<void> {
  await waitFor(() => tally.answers.size + tally.resets.size === CALLS, {
    what: `the ${CALLS} calls of ${who} to be answered or reset`,
    timeoutMs: 20_000,
    detail: () => `${tally.answers.size} answered, ${tally.resets.size} reset`,
  });
  console.log(`${who}: ${tally.answers.size} of ${CALLS} answered, ${tally.resets.size} reset`);
}

test.skipIf(TEST_GRPC_SERVER === "grpc-js")(
  "two clients ask for 150 answers of 1 MiB each and read none: no more answers built than held (64 each), the other calls wait; RSS bounded; others served; every call answered whole once they read",
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
    const unread = tallyStreams(noRead.socket);
    noRead.write(Buffer.concat([PREFACE, openWindows, encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0), ...requests]));
    // One reads its socket but gives no window: answers wait in their streams.
    const noWindow = await connectRaw(server.port, { read: true });
    const windowless = tallyStreams(noWindow.socket);
    noWindow.write(Buffer.concat([clientPreface(), encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0), ...requests]));

    // The first calls run and their answers are held; the others wait for their turn and get nothing yet.
    const running = H2_LIMITS.handlersRunningMax;
    await waitFor(() => windowless.begun.size >= running, {
      what: `${running} calls of the client that gives no window to begin`,
      timeoutMs: 20_000,
      detail: () => `${windowless.begun.size} begun`,
    });
    await expectServes(server, "two clients that do not read 150 MiB of answers each");
    expect((await server.client.get(["big"])).records[0]!.value).toHaveLength(MIB);
    console.log(`calls begun for the client that gives no window: ${windowless.begun.size} of ${CALLS}`);
    // Each holds its answer, its headers sent, waiting for window: 64 answers of 1 MiB fit the bound.
    expect(windowless.begun.size).toBe(running);
    expect(windowless.resets.size).toBe(0);
    expect(windowless.answers.size).toBe(0);
    const holding = probe.stop("two clients asked for 150 answers of 1 MiB each and read none");
    expect(holding.peakBytes - probe.beforeBytes).toBeLessThan(PEAK_OVER_START_MAX);
    // What reading them costs is logged, not bounded here: 300 answers of 1 MiB streamed out in well
    // under a second leave garbage the collector frees at its own pace.
    const reading = probeRss(server.proc.pid);

    // The one that did not read reads at last: every call is answered in turn.
    noRead.socket.resume();
    await waitDecided(unread, "the client that did not read");
    expectWholeAnswersAndCalmResets(unread);
    expect(unread.answers.size).toBeGreaterThanOrEqual(CALLS - running);

    // The one that gave no window gives it: every call is answered, whole, then its status.
    noWindow.write(openWindows);
    await waitDecided(windowless, "the client that gave no window");
    expectWholeAnswersAndCalmResets(windowless);
    expect(windowless.answers.size).toBeGreaterThanOrEqual(CALLS - running);
    expectNoStackTrace(noWindow.received().toString("latin1"));

    noWindow.destroy();
    noRead.destroy();
    reading.stop("the two clients read their 300 answers, then closed");
    await expectServes(server, "clients that did not read their answers, closed");
    expectCleanServerLog(server);
  },
  60_000,
);

// Under grpc-js (Bun's node:http2 server) these 200 answers do not all arrive within 20 s: that
// transport is not what this file is about.
test.skipIf(TEST_GRPC_SERVER === "grpc-js")(
  "a client that reads at its pace with 200 Gets of 1 MiB in flight on one connection gets every answer",
  async () => {
    // Before, the answers waiting for its window passed the 64 MiB bound: RESOURCE_EXHAUSTED
    // ("Bandwidth exhausted", grpc-js's word for ENHANCE_YOUR_CALM) for some of them.
    await server.client.set({ big: new Uint8Array(MIB).fill(7) });
    const client = new HomeKvClient({ address: server.address, timeoutMs: 20_000 });
    try {
      const sizes = await Promise.all(
        Array.from({ length: 200 }, () => client.get(["big"]).then(({ records }) => records[0]?.value?.length)),
      );
      expect(sizes).toEqual(Array.from({ length: 200 }, () => MIB));
    } finally {
      client.close();
    }
  },
  60_000,
);

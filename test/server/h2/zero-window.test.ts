import { expect, test } from "bun:test";
import { GetRequest, GetResponse, WatchRequest } from "../../../src/gen/homekv_service.ts";
import {
  encodeFrame,
  FLAG,
  FRAME,
  PREFACE,
  SETTING,
  settingsPayload,
  uint32Payload,
  WINDOW_BYTES_MAX,
} from "../../../src/h2/frames.ts";
import { GRPC_MESSAGE_PREFIX_BYTES } from "../../../src/h2/grpc-message.ts";
import { H2_LIMITS } from "../../../src/server/h2/settings.ts";
import { expectCleanServerLog, expectServes, probeRss, useTarget } from "../../hardening/harness.ts";
import {
  clientPreface,
  connectRaw,
  countFrames,
  grpcCallFrames,
  type RawConnection,
  tallyStreams,
} from "../../helpers/raw-h2.ts";
import { waitFor } from "../../helpers/wait.ts";

/**
 * A client whose SETTINGS give an initial window of 0 (RFC 9113, 6.9.2): the server may send it no
 * DATA until a WINDOW_UPDATE, or new SETTINGS, opens its streams' windows. It gets the response
 * HEADERS of its calls and nothing more; what the server holds for it meanwhile is bounded (no more
 * than H2_LIMITS.handlersRunningMax answers built, the other calls waiting their turn), others are
 * served, and once it opens the windows every call is answered, whole.
 */

const server = useTarget(["--grpc-server", "native"]);
const GET = "/homekv_service.HomeKvService/Get";
const WATCH = "/homekv_service.HomeKvService/Watch";
const MIB = 1024 * 1024;
const VALUE_BYTES = 256 * 1024;
const GETS = 800;
const WATCHES = 100;
/** 64 answers of 256 KiB held, and what building them left (before: every answer built, 800 of them). */
const PEAK_OVER_START_MAX = 96 * MIB;

const PING = encodeFrame(FRAME.PING, 0, 0, Buffer.from("zerowind"));

/** Sends a PING; resolves once its ACK came, so that everything the server sent before it is in. */
async function roundTrip(connection: RawConnection, acks: { readonly count: number }): Promise<void> {
  const before = acks.count;
  connection.write(PING);
  await waitFor(() => acks.count > before, { what: "the PING's ACK" });
}

test("a client with an initial window of 0 gets HEADERS and no DATA, memory bounded, others served; everything once it opens the windows", async () => {
  await server.client.set({ "zero/big": new Uint8Array(VALUE_BYTES).fill(3) });
  const probe = probeRss(server.proc.pid);
  const connection = await connectRaw(server.port);
  const tally = tallyStreams(connection.socket);
  const acks = countFrames(connection.socket, (type, flags) => type === FRAME.PING && (flags & FLAG.ACK) !== 0);
  const watchIds = Array.from({ length: WATCHES }, (_, i) => 1 + 2 * i);
  const getIds = Array.from({ length: GETS }, (_, i) => 1 + 2 * (WATCHES + i));
  const watch = WatchRequest.encode(WatchRequest.fromPartial({ key: "zero/watched" })).finish();
  const get = GetRequest.encode(GetRequest.fromPartial({ keys: ["zero/big"] })).finish();
  connection.write(
    Buffer.concat([
      PREFACE,
      encodeFrame(FRAME.SETTINGS, 0, 0, settingsPayload([[SETTING.INITIAL_WINDOW_SIZE, 0]])),
      encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0),
      ...watchIds.map((id) => grpcCallFrames(id, WATCH, watch)),
      ...getIds.map((id) => grpcCallFrames(id, GET, get)),
    ]),
  );
  await waitFor(() => tally.headed.size >= H2_LIMITS.handlersRunningMax, {
    what: `${H2_LIMITS.handlersRunningMax} Gets to get their response headers`,
    detail: () => `${tally.headed.size} headed`,
  });
  await server.client.set({ "zero/watched": "changed" });
  await waitFor(() => watchIds.every((id) => tally.headed.has(id)), {
    what: "every Watch to get its response headers",
    detail: () => `${watchIds.filter((id) => tally.headed.has(id)).length} of ${WATCHES}`,
  });
  await expectServes(server, "a client with an initial window of 0");
  await roundTrip(connection, acks);
  const headedGets = getIds.filter((id) => tally.headed.has(id)).length;
  console.log(`Gets with their headers: ${headedGets} of ${GETS}; streams with DATA: ${tally.dataBytes.size}`);
  expect(tally.dataBytes.size).toBe(0);
  expect(tally.resets.size).toBe(0);
  expect(headedGets).toBe(H2_LIMITS.handlersRunningMax);
  const held = probe.stop("800 Gets of 256 KiB and 100 Watches with no window");
  expect(held.peakBytes - probe.beforeBytes).toBeLessThan(PEAK_OVER_START_MAX);

  // The client opens the connection's window and the Watch streams' alone: they get their DATA, the Gets none.
  connection.write(
    Buffer.concat([
      encodeFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32Payload(WINDOW_BYTES_MAX - 65_535)),
      ...watchIds.map((id) => encodeFrame(FRAME.WINDOW_UPDATE, 0, id, uint32Payload(MIB))),
    ]),
  );
  await waitFor(() => watchIds.every((id) => tally.dataBytes.has(id)), {
    what: "every Watch to get its first message",
    detail: () => `${watchIds.filter((id) => tally.dataBytes.has(id)).length} of ${WATCHES}`,
  });
  await roundTrip(connection, acks);
  expect(getIds.filter((id) => tally.dataBytes.has(id))).toEqual([]);

  // Then every stream's, by SETTINGS (which changes the windows of the streams open too; not to
  // 2^31-1, which would take the Watch streams' past it): every Get is answered.
  connection.write(encodeFrame(FRAME.SETTINGS, 0, 0, settingsPayload([[SETTING.INITIAL_WINDOW_SIZE, 64 * MIB]])));
  await waitFor(() => getIds.every((id) => tally.answers.has(id)), {
    what: `the ${GETS} Gets to be answered`,
    timeoutMs: 20_000,
    detail: () => `${tally.answers.size} answered, ${tally.resets.size} reset`,
  });
  for (const id of getIds) {
    const body = tally.answers.get(id)!;
    expect(body.readUInt32BE(1)).toBe(body.length - GRPC_MESSAGE_PREFIX_BYTES);
    expect(GetResponse.decode(body.subarray(GRPC_MESSAGE_PREFIX_BYTES)).records[0]!.value).toHaveLength(VALUE_BYTES);
  }
  expect(tally.resets.size).toBe(0);
  connection.destroy();
  await expectServes(server, "a client that opened its windows");
  expectCleanServerLog(server);
}, 60_000);

test("a window that SETTINGS took below 0 sends nothing until WINDOW_UPDATEs bring it above 0, then exactly what they allow", async () => {
  await server.client.set({ "zero/big": new Uint8Array(VALUE_BYTES).fill(3) });
  const connection = await connectRaw(server.port);
  const tally = tallyStreams(connection.socket);
  const acks = countFrames(connection.socket, (type, flags) => type === FRAME.PING && (flags & FLAG.ACK) !== 0);
  const get = GetRequest.encode(GetRequest.fromPartial({ keys: ["zero/big"] })).finish();
  // The protocol's initial stream window (65,535), the connection's wide open: the stream's alone limits.
  connection.write(
    Buffer.concat([
      clientPreface(),
      encodeFrame(FRAME.WINDOW_UPDATE, 0, 0, uint32Payload(WINDOW_BYTES_MAX - 65_535)),
      encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0),
      grpcCallFrames(1, GET, get),
    ]),
  );
  const sent = () => tally.dataBytes.get(1) ?? 0;
  await waitFor(() => sent() === 65_535, { what: "the stream's first 65,535 bytes", detail: () => `${sent()}` });

  // An initial window of 0 takes the stream's to -65,535 (RFC 9113, 6.9.2); 65,535 more bring it to 0.
  connection.write(
    Buffer.concat([
      encodeFrame(FRAME.SETTINGS, 0, 0, settingsPayload([[SETTING.INITIAL_WINDOW_SIZE, 0]])),
      encodeFrame(FRAME.WINDOW_UPDATE, 0, 1, uint32Payload(65_535)),
    ]),
  );
  await roundTrip(connection, acks);
  expect(sent()).toBe(65_535);
  connection.write(encodeFrame(FRAME.WINDOW_UPDATE, 0, 1, uint32Payload(1_000)));
  await roundTrip(connection, acks);
  expect(sent()).toBe(66_535);

  connection.write(encodeFrame(FRAME.SETTINGS, 0, 0, settingsPayload([[SETTING.INITIAL_WINDOW_SIZE, MIB]])));
  await waitFor(() => tally.answers.has(1), { what: "the answer's end", detail: () => `${sent()} bytes` });
  const body = tally.answers.get(1)!;
  expect(GetResponse.decode(body.subarray(GRPC_MESSAGE_PREFIX_BYTES)).records[0]!.value).toHaveLength(VALUE_BYTES);
  connection.destroy();
});

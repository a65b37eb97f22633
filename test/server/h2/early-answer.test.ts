import { expect, test } from "bun:test";
import { ERROR_CODE, encodeFrame, FLAG, FRAME, type Frame, readFrames } from "../../../src/h2/frames.ts";
import { grpcMessage } from "../../../src/h2/grpc-message.ts";
import { encodeLiterals, HpackDecoder } from "../../../src/h2/hpack.ts";
import { useTarget } from "../../hardening/harness.ts";
import { clientPreface, connectRaw, grpcRequestHeaders, type RawConnection } from "../../helpers/raw-h2.ts";

/**
 * An answer the native server decides from the request's headers alone (here: an unknown method)
 * waits for the end of the request before it goes, so that a client still sending does not get it
 * first (curl 7.88 then hangs or fails: test/system/interop-curl.system.ts); a client that goes on
 * sending past 64 KiB gets it at once, then RST_STREAM NO_ERROR (RFC 9113, 8.1).
 */

const server = useTarget(["--grpc-server", "native"]);
const UNKNOWN = "/homekv_service.HomeKvService/NoSuchMethod";

const ofStream = (received: Buffer, id: number) => readFrames(received).filter((f: Frame) => f.streamId === id);
const PING = encodeFrame(FRAME.PING, 0, 0, Buffer.from("answered"));

/** Sends `bytes` and a PING after them; resolves once the PING's ACK says the server read them. */
async function sendAndSync(connection: RawConnection, bytes: Buffer): Promise<void> {
  const acks = (received: Buffer) => readFrames(received).filter((f) => f.type === FRAME.PING).length;
  const before = acks(connection.received());
  connection.write(Buffer.concat([bytes, PING]));
  expect(await connection.waitUntil((received) => acks(received) > before, 5_000)).toBe(true);
}

test("an unknown method is answered once its request ended, not before, and without a reset", async () => {
  const connection = await connectRaw(server.port);
  const headers = encodeFrame(FRAME.HEADERS, FLAG.END_HEADERS, 1, encodeLiterals(grpcRequestHeaders(UNKNOWN)));
  await sendAndSync(connection, Buffer.concat([clientPreface(), encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0), headers]));
  expect(ofStream(connection.received(), 1)).toEqual([]);

  connection.write(encodeFrame(FRAME.DATA, FLAG.END_STREAM, 1, grpcMessage(new Uint8Array(3))));
  const ended = (received: Buffer) => ofStream(received, 1).some((f) => f.flags & FLAG.END_STREAM);
  expect(await connection.waitUntil(ended, 5_000)).toBe(true);
  const frames = ofStream(connection.received(), 1);
  expect(frames.map((f) => f.type)).toEqual([FRAME.HEADERS]); // Trailers-Only, no RST_STREAM
  expect(new HpackDecoder().decode(frames[0]!.payload)).toContainEqual(["grpc-status", "12"]);
  connection.destroy();
});

test("a client that goes on sending past 64 KiB gets the answer at once, then RST_STREAM NO_ERROR", async () => {
  const connection = await connectRaw(server.port);
  const headers = encodeFrame(FRAME.HEADERS, FLAG.END_HEADERS, 1, encodeLiterals(grpcRequestHeaders(UNKNOWN)));
  const data = Array.from({ length: 5 }, () => encodeFrame(FRAME.DATA, 0, 1, Buffer.alloc(16_384)));
  await sendAndSync(
    connection,
    Buffer.concat([clientPreface(), encodeFrame(FRAME.SETTINGS, FLAG.ACK, 0), headers, ...data]),
  );
  const frames = ofStream(connection.received(), 1);
  expect(frames.map((f) => f.type)).toEqual([FRAME.HEADERS, FRAME.RST_STREAM]);
  expect(new HpackDecoder().decode(frames[0]!.payload)).toContainEqual(["grpc-status", "12"]);
  expect(frames[1]!.payload.readUInt32BE(0)).toBe(ERROR_CODE.NO_ERROR);
  connection.destroy();
});

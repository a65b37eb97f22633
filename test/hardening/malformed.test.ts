import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import type { ClientHttp2Session } from "node:http2";
import { gzipSync } from "node:zlib";
import { status as Status } from "@grpc/grpc-js";
import { GetResponse, HomeKvServiceService } from "../../src/gen/homekv_service.ts";
import { grpcMessage } from "../../src/h2/grpc-message.ts";
import { mulberry32 } from "../../src/random.ts";
import { type GrpcAnswer, grpcCall, h2Session } from "../helpers/raw-h2.ts";
import {
  expectCleanServerLog,
  expectNoStackTrace,
  expectRssWithin,
  expectServes,
  probeRss,
  useTarget,
} from "./harness.ts";

/**
 * Request bodies that are not what the method's message type says, on every RPC of HomeKvService:
 * each is answered with a status (INVALID_ARGUMENT naming the RPC and the decoder's reason for a
 * protobuf that does not decode; grpc-js's own status for broken gRPC framing), never INTERNAL or
 * UNKNOWN, never a stack trace; and the server goes on serving.
 */

/** Every RPC of HomeKvService that the server implements (filled in beforeAll). */
const RPCS: { path: string; name: string }[] = [];

/** Protobuf bodies that no decoder can read, and the reason it gives. */
const UNDECODABLE: readonly { what: string; bytes: number[]; reason: string }[] = [
  { what: "a truncated varint", bytes: [0x10, 0xff], reason: "premature EOF" },
  { what: "a length past the end of the message", bytes: [0x0a, 0x7f, 0x61], reason: "premature EOF" },
  { what: "an illegal wire type (7)", bytes: [0x0f, 0x01], reason: "cant skip wire type 7" },
  { what: "wire type 6 (never defined)", bytes: [0x0e, 0x01], reason: "cant skip wire type 6" },
];

/** Statuses a body that happens to decode may get from a handler: anything but the ones that mean a server bug. */
const BUG_STATUSES = [Status.INTERNAL, Status.UNKNOWN];

const server = useTarget();
let session: ClientHttp2Session;

beforeAll(async () => {
  session = h2Session(server.port);
  // An RPC in the .proto whose handler is still to be written answers UNIMPLEMENTED whatever it gets.
  for (const { path } of Object.values(HomeKvServiceService)) {
    const name = path.slice(path.lastIndexOf("/") + 1);
    const answer = await grpcCall(session, path, grpcMessage(Uint8Array.from([0x0f])), {
      headers: { "grpc-timeout": "300m" },
    });
    if (answer.status === Status.UNIMPLEMENTED) console.log(`${name}: not implemented by this server, left out`);
    else RPCS.push({ path, name });
  }
  expect(RPCS.length).toBeGreaterThanOrEqual(9);
});
afterAll(() => {
  session?.close();
});

/** A call whose answer must carry no stack trace, wherever it might hide. */
async function call(
  path: string,
  body: Uint8Array,
  options: { headers?: Record<string, string>; timeoutMs?: number } = {},
): Promise<GrpcAnswer> {
  const answer = await grpcCall(session, path, body, options);
  expectNoStackTrace(answer.everything);
  return answer;
}

describe("malformed protobuf bodies", () => {
  test("an undecodable body is INVALID_ARGUMENT naming the RPC and the reason, on every RPC", async () => {
    const probe = probeRss(server.proc.pid);
    for (const { name, path } of RPCS) {
      for (const { bytes, reason } of UNDECODABLE) {
        const answer = await call(path, grpcMessage(Uint8Array.from(bytes)));
        expect({ rpc: name, status: answer.status, message: answer.message }).toEqual({
          rpc: name,
          status: Status.INVALID_ARGUMENT,
          // Where it stopped, by the field's name (or number) when the bytes get as far as a field.
          message: expect.stringMatching(
            new RegExp(`^the ${name} request is malformed( at [\\w.\\[\\] ]+)?: ${reason}$`),
          ),
        });
      }
    }
    const after = probe.stop(`malformed bodies (${RPCS.length * UNDECODABLE.length} calls)`);
    expectRssWithin(probe, after, 32);
    await expectServes(server, "undecodable bodies");
  });

  test("a number too large for JavaScript is INVALID_ARGUMENT, not a rounded revision", async () => {
    // GetRequest.revision (field 2) = 2^64 - 1.
    const answer = await call(
      "/homekv_service.HomeKvService/Get",
      grpcMessage(Uint8Array.from([0x10, ...Array(9).fill(0xff), 0x01])),
    );
    expect(answer.status).toBe(Status.INVALID_ARGUMENT);
    expect(answer.message).toBe(
      "the Get request is malformed at revision: Value is larger than Number.MAX_SAFE_INTEGER",
    );
  });

  test("a key that is not UTF-8 is INVALID_ARGUMENT and writes nothing; a UTF-8 key, U+FFFD included, is taken as sent", async () => {
    /** A SetRequest of one record (field 1; Record.key 1, Record.value 2) with these key bytes. */
    const setOf = (key: number[]) => {
      const record = [0x0a, key.length, ...key, 0x12, 0x01, 0x76];
      return grpcMessage(Uint8Array.from([0x0a, record.length, ...record]));
    };
    const getOf = (key: string) => {
      const bytes = [...new TextEncoder().encode(key)];
      return grpcMessage(Uint8Array.from([0x0a, bytes.length, ...bytes]));
    };
    const found = async (key: string) => {
      const answer = await call("/homekv_service.HomeKvService/Get", getOf(key));
      return GetResponse.decode(answer.body.subarray(5)).records[0]?.value !== undefined;
    };
    // "a" then 0xFF: a decoder that replaced the byte would write the key "a\uFFFD".
    const refused = await call("/homekv_service.HomeKvService/Set", setOf([0x61, 0xff]));
    expect(refused.status).toBe(Status.INVALID_ARGUMENT);
    expect(refused.message).toBe(
      "the Set request is malformed at records[0].key: a string field (a key, a request id) is not valid UTF-8",
    );
    expect(await found("a\uFFFD")).toBe(false);
    // The same character sent as UTF-8 (EF BF BD) is a key like any other.
    for (const key of ["a\uFFFD", "clé", "€/𝄞"]) {
      const taken = await call("/homekv_service.HomeKvService/Set", setOf([...new TextEncoder().encode(key)]));
      expect(taken.status).toBe(Status.OK);
      expect(await found(key)).toBe(true);
    }
  });

  test("a known field with the wrong wire type is skipped like an unknown field (protobuf's rule)", async () => {
    // GetRequest.keys (field 1, a string) sent as a varint: a Get of no keys.
    const answer = await call("/homekv_service.HomeKvService/Get", grpcMessage(Uint8Array.from([0x08, 0x01])));
    expect(answer.status).toBe(Status.OK);
    expect(GetResponse.decode(answer.body.subarray(5)).records).toEqual([]);
    // WatchRequest.key sent as a varint: a watch of nothing, refused by the handler.
    const watch = await call("/homekv_service.HomeKvService/Watch", grpcMessage(Uint8Array.from([0x08, 0x01])));
    expect(watch.status).toBe(Status.INVALID_ARGUMENT);
    expect(watch.message).toBe("a watch needs a key, a prefix or a range (start/end)");
  });

  test("random bytes as the message, 40 per RPC: a status from the handler or the decoder, never a bug", async () => {
    const random = mulberry32(6);
    const probe = probeRss(server.proc.pid);
    const seen = new Map<number, number>();
    for (const { path } of RPCS) {
      for (let i = 0; i < 40; i++) {
        const bytes = Uint8Array.from({ length: 1 + Math.floor(random() * 256) }, () => Math.floor(random() * 256));
        // A body that decodes to a valid watch is a watch: it is answered when the call's deadline passes.
        const answer = await call(path, grpcMessage(bytes), { headers: { "grpc-timeout": "300m" }, timeoutMs: 2_000 });
        expect(answer.status).toBeDefined();
        expect(BUG_STATUSES).not.toContain(answer.status!);
        seen.set(answer.status!, (seen.get(answer.status!) ?? 0) + 1);
      }
    }
    probe.stop(`random message bodies (${RPCS.length * 40} calls)`);
    console.log(
      "statuses of random bodies:",
      Object.fromEntries([...seen].map(([code, count]) => [Status[code], count])),
    );
    expect(seen.get(Status.INVALID_ARGUMENT) ?? 0).toBeGreaterThan(RPCS.length * 20);
    await expectServes(server, "random message bodies");
  }, 20_000);
});

describe("broken gRPC framing (grpc-js answers these itself)", () => {
  const GET = "/homekv_service.HomeKvService/Get";

  test("no message, a length prefix past the body, a cut prefix, two messages on a unary call", async () => {
    const noMessage = "Received no request message for server streaming method /homekv_service.HomeKvService/Get";
    for (const body of [new Uint8Array(0), Uint8Array.from([0, 0, 0, 0, 100, 1, 2, 3]), Uint8Array.from([0, 0, 0])]) {
      expect(await call(GET, body)).toMatchObject({ status: Status.UNIMPLEMENTED, message: noMessage });
    }
    const twice = Buffer.concat([grpcMessage(new Uint8Array(0)), grpcMessage(new Uint8Array(0))]);
    expect((await call(GET, twice)).status).toBe(Status.UNIMPLEMENTED);
  });

  test("compression: garbage, an unknown encoding, and a gzip bomb stopped at the hard cap", async () => {
    const garbage = grpcMessage(Buffer.from("this is not gzip"));
    garbage[0] = 1; // the compressed flag
    expect(await call(GET, garbage, { headers: { "grpc-encoding": "gzip" } })).toMatchObject({
      status: Status.INTERNAL,
      message: "Failed to decompress message",
    });
    expect((await call(GET, garbage, { headers: { "grpc-encoding": "br" } })).status).toBe(Status.UNIMPLEMENTED);

    const probe = probeRss(server.proc.pid);
    // 256 MiB of zeros in ~250 KiB: inflating stops at the hard cap (twice --max-request-bytes, 32 MiB by default).
    const bomb = grpcMessage(gzipSync(Buffer.alloc(256 * 1024 * 1024)));
    bomb[0] = 1;
    const answer = await call(GET, bomb, { headers: { "grpc-encoding": "gzip" } });
    expect(answer).toMatchObject({
      status: Status.RESOURCE_EXHAUSTED,
      message: "Received message that decompresses to a size larger than 33554432",
    });
    const after = probe.stop("gzip bomb (256 MiB inflated from 250 KiB)");
    expectRssWithin(probe, after, 128);
    await expectServes(server, "gzip bomb");
  }, 20_000);

  test("an unknown method, a bad grpc-timeout, a content type that is not gRPC", async () => {
    expect(await call("/homekv_service.HomeKvService/Nope", grpcMessage(new Uint8Array(0)))).toMatchObject({
      status: Status.UNIMPLEMENTED,
      message: "The server does not implement the method /homekv_service.HomeKvService/Nope",
    });
    expect(await call(GET, grpcMessage(new Uint8Array(0)), { headers: { "grpc-timeout": "soon" } })).toMatchObject({
      status: Status.INTERNAL,
      message: 'Invalid grpc-timeout value "soon"',
    });
    const notGrpc = await call(GET, grpcMessage(new Uint8Array(0)), { headers: { "content-type": "text/plain" } });
    expect(notGrpc.status).toBeUndefined(); // HTTP 415, no gRPC status
    expect(notGrpc.everything).toContain('":status":415');
    await expectServes(server, "broken framing");
    expectCleanServerLog(server);
  });
});

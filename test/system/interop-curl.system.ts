import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { GetRequest, GetResponse, SetRequest, SetResponse } from "../../src/gen/homekv_service.ts";
import { GRPC_MESSAGE_PREFIX_BYTES, grpcMessage } from "../../src/h2/grpc-message.ts";
import { useTarget } from "../hardening/harness.ts";
import { bytes, text } from "../helpers/bytes.ts";
import { runCommand, type ServerProcess, scratchDir, startServerProcess } from "../helpers/processes.ts";
import { makeTestCerts, type TestCerts } from "../security/certs.ts";
import { hasCommand, missingTool } from "./interop-tools.ts";

/**
 * curl (libcurl over nghttp2) as a gRPC client of the native server: a POST of a pre-encoded
 * message, over h2c by prior knowledge and over TLS with ALPN h2. curl knows nothing of gRPC, so
 * this checks the HTTP/2 and the gRPC framing a generic stack sees: the status, the headers, the
 * length-prefixed answer, and grpc-status in the trailers (or in the only headers, for an error).
 */

const SERVICE = "/homekv_service.HomeKvService";
const curlMissing = missingTool("curl", hasCommand("curl"), ["curl"]);
const scratch = scratchDir("homekv-curl-");
afterAll(() => scratch.cleanup());

interface CurlAnswer {
  httpVersion: string;
  /** The header blocks curl printed, each by name: the headers, then the trailers (Trailers-Only: one block). */
  blocks: Map<string, string>[];
  /** The gRPC message of the answer, without its prefix; undefined when there was none. */
  message: Uint8Array | undefined;
}

let calls = 0;

/** POSTs `message` (gRPC-framed here) to `url` with curl; `extra` are curl flags (TLS ones). */
async function curlCall(url: string, message: Uint8Array, extra: readonly string[] = []): Promise<CurlAnswer> {
  const n = calls++;
  const [request, response] = [join(scratch.path, `request-${n}`), join(scratch.path, `response-${n}`)];
  writeFileSync(request, grpcMessage(message));
  const result = await runCommand([
    "curl",
    "--silent",
    "--show-error",
    "--max-time",
    "10",
    ...extra,
    "-H",
    "content-type: application/grpc",
    "-H",
    "te: trailers",
    "--data-binary",
    `@${request}`,
    "--dump-header",
    "-",
    "--output",
    response,
    "--write-out",
    "version %{http_version}\n",
    url,
  ]);
  expect(result.stderr).toBe("");
  expect(result.exitCode).toBe(0);
  const blocks: Map<string, string>[] = [];
  for (const block of result.stdout.split(/\r?\n\r?\n/)) {
    const fields = new Map<string, string>();
    for (const line of block.split(/\r?\n/)) {
      const colon = line.indexOf(": ");
      if (colon > 0) fields.set(line.slice(0, colon).toLowerCase(), line.slice(colon + 2));
    }
    if (fields.size > 0) blocks.push(fields);
  }
  const body = readFileSync(response);
  let answer: Uint8Array | undefined;
  if (body.length > 0) {
    expect(body[0]).toBe(0); // not compressed
    expect(body.readUInt32BE(1)).toBe(body.length - GRPC_MESSAGE_PREFIX_BYTES);
    answer = body.subarray(GRPC_MESSAGE_PREFIX_BYTES);
  }
  return { httpVersion: /version (\S+)/.exec(result.stdout)?.[1] ?? "", blocks, message: answer };
}

describe.skipIf(curlMissing !== undefined)("curl against the native server", () => {
  const server = useTarget(["--grpc-server", "native"]);
  const url = (method: string) => `http://127.0.0.1:${server.port}${SERVICE}/${method}`;
  const h2c = ["--http2-prior-knowledge"];

  test("a Set then a Get over h2c: headers, one length-prefixed answer, grpc-status 0 in the trailers", async () => {
    const set = await curlCall(
      url("Set"),
      SetRequest.encode(SetRequest.fromPartial({ records: [{ key: "curl/a", value: bytes("from curl") }] })).finish(),
      h2c,
    );
    expect(set.httpVersion).toBe("2");
    expect(set.blocks).toHaveLength(2);
    expect(set.blocks[0]!.get("content-type")).toBe("application/grpc");
    expect(set.blocks[1]!.get("grpc-status")).toBe("0");
    const { revision } = SetResponse.decode(set.message!);
    expect(revision).toBeGreaterThan(0);

    const get = await curlCall(
      url("Get"),
      GetRequest.encode(GetRequest.fromPartial({ keys: ["curl/a"] })).finish(),
      h2c,
    );
    expect(get.blocks[1]!.get("grpc-status")).toBe("0");
    const { records } = GetResponse.decode(get.message!);
    expect(text(records[0]!.value)).toBe("from curl");
    expect(records[0]!.modRevision).toBe(revision);
    // What curl wrote went through the server for real: HomeKV's own client reads it.
    expect(text((await server.client.get(["curl/a"])).records[0]!.value)).toBe("from curl");
  });

  test("errors come as Trailers-Only: one header block with a non-zero grpc-status and its message, no body", async () => {
    const future = await curlCall(
      url("Get"),
      GetRequest.encode(GetRequest.fromPartial({ keys: ["curl/a"], revision: 1_000_000 })).finish(),
      h2c,
    );
    expect(future.blocks).toHaveLength(1);
    expect(future.blocks[0]!.get("content-type")).toBe("application/grpc");
    expect(future.blocks[0]!.get("grpc-status")).toBe("11"); // OUT_OF_RANGE
    expect(future.blocks[0]!.get("grpc-message")).toContain("revision 1000000 is in the future");
    expect(future.message).toBeUndefined();

    const unknown = await curlCall(url("NoSuchMethod"), new Uint8Array(0), h2c);
    expect(unknown.blocks).toHaveLength(1);
    expect(unknown.blocks[0]!.get("grpc-status")).toBe("12"); // UNIMPLEMENTED
    expect(unknown.message).toBeUndefined();
  });
});

describe.skipIf(curlMissing !== undefined)("curl against the native server over TLS", () => {
  let certs: TestCerts;
  let server: ServerProcess;
  beforeAll(async () => {
    certs = makeTestCerts();
    server = await startServerProcess([
      "--in-memory",
      "--grpc-server",
      "native",
      "--tls-cert",
      certs.server.cert,
      "--tls-key",
      certs.server.key,
    ]);
  });
  afterAll(async () => {
    expect(await server.stop()).toBe(0);
    certs.cleanup();
  });

  test("ALPN h2 with a CA curl trusts: the call succeeds over HTTP/2; HTTP/1.1 only is refused", async () => {
    const url = `https://localhost:${server.port}${SERVICE}/Set`;
    const message = SetRequest.encode(
      SetRequest.fromPartial({ records: [{ key: "tls", value: bytes("y") }] }),
    ).finish();
    const answer = await curlCall(url, message, ["--http2", "--cacert", certs.ca]);
    expect(answer.httpVersion).toBe("2");
    expect(answer.blocks[1]!.get("grpc-status")).toBe("0");
    expect(SetResponse.decode(answer.message!).revision).toBeGreaterThan(0);

    // A client that offers only http/1.1 by ALPN is not spoken to (RFC 9113, 3.2).
    const refused = await runCommand(["curl", "--silent", "--max-time", "10", "--http1.1", "--cacert", certs.ca, url]);
    expect(refused.exitCode).not.toBe(0);
  });
});

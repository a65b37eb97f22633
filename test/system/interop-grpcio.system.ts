import { describe, expect, test } from "bun:test";
import { join } from "node:path";
import {
  GetRequest,
  GetResponse,
  ScanRequest,
  ScanResponse,
  SetRequest,
  SetResponse,
  WatchRequest,
  WatchResponse,
} from "../../src/gen/homekv_service.ts";
import { expectCleanServerLog, useTarget } from "../hardening/harness.ts";
import { bytes, text } from "../helpers/bytes.ts";
import { ROOT, runCommand } from "../helpers/processes.ts";
import { waitForWatchers } from "../helpers/server.ts";
import { DEBIAN_PYTHON, missingTool, pythonHasGrpc } from "./interop-tools.ts";

/**
 * Python's grpcio (gRPC's C core: its own HTTP/2, HPACK and flow control) against the native
 * server, through test/fixtures/grpcio-client.py: generic stubs that send the bytes of HomeKV's
 * codec and hand back the bytes they got, so no proto is compiled on the Python side. Unary calls
 * (Set, Get, Scan, errors with their status and message) and a server stream (Watch) it cancels.
 */

const grpcioMissing = missingTool("Python grpcio", pythonHasGrpc, ["python3-grpcio"]);
const SERVICE = "/homekv_service.HomeKvService";

type Call = { unary: string; request: string } | { stream: string; request: string; take: number };

interface Outcome {
  code: string;
  details: string;
  responses: string[];
}

const hex = (message: { finish(): Uint8Array }) => Buffer.from(message.finish()).toString("hex");
const unhex = (value: string) => Buffer.from(value, "hex");

describe.skipIf(grpcioMissing !== undefined)("Python grpcio against the native server", () => {
  const server = useTarget(["--grpc-server", "native"]);

  async function grpcio(calls: readonly Call[]): Promise<Outcome[]> {
    const result = await runCommand(
      [DEBIAN_PYTHON, join(ROOT, "test", "fixtures", "grpcio-client.py"), server.address],
      {
        stdin: JSON.stringify(calls),
      },
    );
    if (result.exitCode !== 0) throw new Error(`grpcio-client.py exited with ${result.exitCode}:\n${result.stderr}`);
    return JSON.parse(result.stdout) as Outcome[];
  }

  test("Set, Get, Scan and a Watch replayed from a revision, then cancelled", async () => {
    const set = (key: string, value: string): Call => ({
      unary: `${SERVICE}/Set`,
      request: hex(SetRequest.encode(SetRequest.fromPartial({ records: [{ key, value: bytes(value) }] }))),
    });
    const written = await grpcio([set("py/a", "one"), set("py/b", "two")]);
    for (const outcome of written) expect(outcome).toMatchObject({ code: "OK", details: "" });
    const [first = 0, second = 0] = written.map((outcome) => SetResponse.decode(unhex(outcome.responses[0]!)).revision);
    expect(second).toBe(first + 1);

    const [get, scan, watch] = await grpcio([
      { unary: `${SERVICE}/Get`, request: hex(GetRequest.encode(GetRequest.fromPartial({ keys: ["py/a", "py/b"] }))) },
      { unary: `${SERVICE}/Scan`, request: hex(ScanRequest.encode(ScanRequest.fromPartial({ prefix: "py/" }))) },
      {
        stream: `${SERVICE}/Watch`,
        request: hex(WatchRequest.encode(WatchRequest.fromPartial({ prefix: "py/", startRevision: first }))),
        take: 2,
      },
    ]);
    expect(get!.code).toBe("OK");
    expect(GetResponse.decode(unhex(get!.responses[0]!)).records.map((r) => text(r.value))).toEqual(["one", "two"]);
    expect(scan!.code).toBe("OK");
    const page = ScanResponse.decode(unhex(scan!.responses[0]!));
    expect(page.records.map((r) => r.key)).toEqual(["py/a", "py/b"]);
    expect(page.continuation).toBe("");
    expect(watch!.code).toBe("OK");
    const events = watch!.responses
      .map((response) => WatchResponse.decode(unhex(response)))
      .flatMap((response) => response.events.map((event) => [event.record!.key, event.record!.modRevision]));
    expect(events.slice(0, 2)).toEqual([
      ["py/a", first],
      ["py/b", second],
    ]);
    // grpcio cancelled the Watch (RST_STREAM) and closed its channel: the server dropped the watcher.
    await waitForWatchers(server.client, 0);
    expectCleanServerLog(server);
  });

  test("errors reach grpcio as their status code and message", async () => {
    const [future, unknown] = await grpcio([
      {
        unary: `${SERVICE}/Get`,
        request: hex(GetRequest.encode(GetRequest.fromPartial({ keys: ["py/a"], revision: 1_000_000 }))),
      },
      { unary: `${SERVICE}/NoSuchMethod`, request: "" },
    ]);
    expect(future).toMatchObject({ code: "OUT_OF_RANGE", responses: [] });
    expect(future!.details).toContain("revision 1000000 is in the future");
    expect(unknown).toMatchObject({ code: "UNIMPLEMENTED", responses: [] });
  });
});

import { afterAll, describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { SetRequest } from "../../src/gen/homekv_service.ts";
import { grpcMessage } from "../../src/h2/grpc-message.ts";
import { expectCleanServerLog, useTarget } from "../hardening/harness.ts";
import { bytes } from "../helpers/bytes.ts";
import { runCommand, scratchDir } from "../helpers/processes.ts";
import { hasCommand, missingTool } from "./interop-tools.ts";

/**
 * nghttp2's h2load (the load generator the benchmarks use) against the native server: thousands of
 * pre-encoded unary Sets, many in flight on each of a few connections. h2load sees HTTP statuses
 * only (a gRPC error is an HTTP 200 too), so the server's revision is what proves that every call
 * was a Set that committed.
 */

const h2loadMissing = missingTool("h2load", hasCommand("h2load"), ["nghttp2-client"]);
const scratch = scratchDir("homekv-h2load-");
afterAll(() => scratch.cleanup());

describe.skipIf(h2loadMissing !== undefined)("h2load against the native server", () => {
  const server = useTarget(["--grpc-server", "native"]);

  test("4,000 unary Sets, 2 connections × 32 in flight: all 2xx, none failed, every one committed", async () => {
    const calls = 4_000;
    const request = join(scratch.path, "set");
    const message = SetRequest.encode(SetRequest.fromPartial({ records: [{ key: "h2load/k", value: bytes("v") }] }));
    writeFileSync(request, grpcMessage(message.finish()));
    const before = (await server.client.get(["h2load/k"])).revision;

    const result = await runCommand(
      [
        "h2load",
        "-n",
        String(calls),
        "-c",
        "2",
        "-m",
        "32",
        "-d",
        request,
        "-H",
        "content-type: application/grpc",
        "-H",
        "te: trailers",
        `http://127.0.0.1:${server.port}/homekv_service.HomeKvService/Set`,
      ],
      { timeoutMs: 60_000 },
    );
    const summary = result.stdout.split("\n").filter((line) => /^(requests|status codes|finished in):?/.test(line));
    console.log(summary.join("\n"));
    expect(result.exitCode).toBe(0);
    expect(result.stdout).toContain(
      `requests: ${calls} total, ${calls} started, ${calls} done, ${calls} succeeded, 0 failed, 0 errored, 0 timeout`,
    );
    expect(result.stdout).toContain(`status codes: ${calls} 2xx, 0 3xx, 0 4xx, 0 5xx`);

    const after = await server.client.get(["h2load/k"]);
    expect(after.revision - before).toBe(calls);
    expect(after.records[0]!.version).toBeGreaterThanOrEqual(calls);
    expectCleanServerLog(server);
  }, 60_000);
});

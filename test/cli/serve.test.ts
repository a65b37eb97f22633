import { describe, expect, test } from "bun:test";
import { SetRequest, SetResponse } from "../../src/gen/homekv_service.ts";
import { GRPC_MESSAGE_PREFIX_BYTES, grpcMessage } from "../../src/h2/grpc-message.ts";
import { runHomekv, startServerProcess } from "../helpers/processes.ts";
import { grpcCall, h2Session } from "../helpers/raw-h2.ts";
import { waitFor } from "../helpers/wait.ts";

const SET = "/homekv_service.HomeKvService/Set";

describe("homekv serve", () => {
  test("a port in use is one clear line and a non-zero exit", async () => {
    const first = await startServerProcess();
    try {
      const second = await runHomekv(["serve", "--in-memory", "--host", "127.0.0.1", "-p", String(first.port)]);
      expect(second.exitCode).toBe(1);
      expect(second.stderr.trim().split("\n")).toEqual([
        `[error] cannot listen on 127.0.0.1:${first.port}: address already in use`,
      ]);
    } finally {
      await first.stop();
    }
  });

  test("an address this machine does not have is one clear line and a non-zero exit", async () => {
    // Binding sends no traffic: the kernel refuses an address no interface holds.
    const result = await runHomekv(["serve", "--in-memory", "--host", "::2", "-p", "0"]);
    expect(result.exitCode).toBe(1);
    expect(result.stderr.trim().split("\n")).toEqual([
      "[error] cannot listen on [::2]:0: address not available on this machine",
    ]);
  });

  test("bad limit flags are refused before anything starts", async () => {
    const result = await runHomekv(["serve", "--in-memory", "-p", "0", "--max-value-bytes", "lots"]);
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain("--max-value-bytes must be a whole number");
  });

  test("limits set on serve are enforced", async () => {
    const server = await startServerProcess(["--max-value-bytes", "4"]);
    try {
      const result = await runHomekv(["set", "-p", String(server.port), "k=12345"]);
      expect(result.exitCode).toBe(1);
      expect(result.stderr).toContain("over the limit of 4 bytes (--max-value-bytes)");
    } finally {
      await server.stop();
    }
  });

  for (const signal of ["SIGTERM", "SIGINT"] as const) {
    test(`${signal}: stops accepting, finishes calls in flight and exits 0`, async () => {
      const server = await startServerProcess();
      const session = h2Session(server.port);
      try {
        const records = Array.from({ length: 24 }, (_, i) => ({ key: `k${i}`, value: new Uint8Array(1024) }));
        const body = grpcMessage(SetRequest.encode(SetRequest.fromPartial({ records })).finish());
        let exited: Promise<number> | undefined;
        // Half the Set is sent and read by the server when the signal comes; the rest only once the
        // server said it is stopping. The call must still be answered, and then the server exits.
        const answer = await grpcCall(session, SET, body, {
          timeoutMs: 15_000,
          hold: {
            bytes: body.length >> 1,
            until: async () => {
              exited = server.stop(signal);
              await waitFor(() => server.output().includes(`${signal}: finishing calls in flight`), {
                what: `the server to say it is stopping on ${signal}`,
                detail: () => server.output(),
              });
            },
          },
        });
        expect(answer.status).toBe(0);
        expect(SetResponse.decode(answer.body.subarray(GRPC_MESSAGE_PREFIX_BYTES)).revision).toBe(1);
        expect(await exited).toBe(0);
      } finally {
        session.close();
        await server.stop();
      }
    });
  }
});

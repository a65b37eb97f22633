import { describe, expect, test } from "bun:test";
import { HomeKvClient } from "../../src/client/client.ts";
import { runHomekv, startServerProcess } from "../helpers/processes.ts";

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
      const client = new HomeKvClient({ address: server.address });
      await client.set({ warm: "connection is up" });
      // A large batch is still being received when the signal arrives: its stream has started, so
      // the server must finish it before it exits.
      const value = new Uint8Array(512 * 1024);
      const inFlight = client.set(Array.from({ length: 24 }, (_, i) => [`k${i}`, value] as const));
      await Bun.sleep(10);
      const [written, exitCode] = await Promise.all([inFlight, server.stop(signal)]);
      expect(written.revision).toBe(2);
      expect(exitCode).toBe(0);
      expect(server.output()).toContain(`${signal}: finishing calls in flight`);
      client.close();
    });
  }
});

import { describe, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { expectOneLineError } from "../helpers/cli.ts";
import { runHomekv, scratchDir } from "../helpers/processes.ts";
import { useServer } from "../helpers/server.ts";

/** `--endpoints` and HOMEKV_ENDPOINTS against a real server, with dead endpoints (nothing listens) before it. */
const server = useServer(["--in-memory"]);
const DEAD = "127.0.0.1:1,127.0.0.1:2";

describe("--endpoints and HOMEKV_ENDPOINTS", () => {
  test("every client command fails over past dead endpoints to one that answers", async () => {
    const endpoints = `${DEAD},${server.address}`;
    expect((await runHomekv(["set", "--endpoints", endpoints, "k=v"])).stdout).toMatch(/^OK \(revision \d+\)\n$/);
    expect((await runHomekv(["get", "--endpoints", endpoints, "k"])).stdout).toBe('k  "v"\n');
    expect((await runHomekv(["scan", "--endpoints", endpoints, "--prefix", "k"])).stdout).toContain('"v"');
    expect((await runHomekv(["metrics", "--endpoints", endpoints])).exitCode).toBe(0);
    expect((await runHomekv(["del", "--endpoints", endpoints, "k"])).stdout).toMatch(/^deleted 1 /);
  });

  test("HOMEKV_ENDPOINTS is used when no flag names a server; --host/--port beat it, --endpoints too", async () => {
    const env = { HOMEKV_ENDPOINTS: ` ${DEAD}, ${server.address} ` };
    expect((await runHomekv(["set", "e=1"], { env })).exitCode).toBe(0);
    const dead = { HOMEKV_ENDPOINTS: DEAD };
    expect((await runHomekv(["get", "-p", String(server.port), "e"], { env: dead })).stdout).toBe('e  "1"\n');
    expect((await runHomekv(["get", "--endpoints", server.address, "e"], { env: dead })).stdout).toBe('e  "1"\n');
    // Over HOMEKV_HOST/HOMEKV_PORT, the list wins.
    const both = { HOMEKV_ENDPOINTS: server.address, HOMEKV_PORT: "1" };
    expect((await runHomekv(["get", "e"], { env: both })).stdout).toBe('e  "1"\n');
  });

  test("no endpoint reachable: one line naming each, exit 1", async () => {
    expectOneLineError(
      await runHomekv(["get", "--endpoints", DEAD, "k"]),
      1,
      "cannot reach HomeKV at any endpoint: 127.0.0.1:1: connection refused (is homekv serve running there?); 127.0.0.1:2: connection refused",
    );
  });

  test("a malformed list is a usage error naming where it came from", async () => {
    const wrong = (args: string[], env: Record<string, string> = {}) => runHomekv(["get", ...args, "k"], { env });
    expectOneLineError(
      await wrong(["--endpoints", "127.0.0.1:1,,127.0.0.1:2"]),
      2,
      '--endpoints must list HOST:PORT entries (port 1 to 65535) separated by commas, not ""',
    );
    expectOneLineError(await wrong(["--endpoints", "127.0.0.1"]), 2, 'not "127.0.0.1"');
    expectOneLineError(await wrong(["--endpoints", "127.0.0.1:70000"]), 2, 'not "127.0.0.1:70000"');
    expectOneLineError(await wrong([], { HOMEKV_ENDPOINTS: "localhost:x" }), 2, "HOMEKV_ENDPOINTS must list HOST:PORT");
    expectOneLineError(await wrong(["--endpoints", "[::1]:5,[::1]:5"]), 2, "--endpoints lists [::1]:5 twice");
    expectOneLineError(
      await wrong(["--endpoints", server.address, "-p", "5"]),
      2,
      "give --endpoints or --host/--port, not both",
    );
    expectOneLineError(await runHomekv(["bench", "--endpoints", DEAD]), 2, "bench loads one server");
  });
});

describe("--request-id", () => {
  test("set, del and txn send it; a repeat of an id is not applied again; an empty one is a usage error", async () => {
    const at = ["-p", String(server.port)];
    const once = await runHomekv(["set", ...at, "--request-id", "s-1", "r=1"]);
    expect(once.stdout).toMatch(/^OK \(revision \d+\)\n$/);
    // Sent again with its id, the write is answered with the first one's revision, not applied again.
    expect((await runHomekv(["set", ...at, "--request-id", "s-1", "r=1"])).stdout).toBe(once.stdout);
    expect((await runHomekv(["set", ...at, "--request-id", "s-2", "--if-absent", "r2=1"])).exitCode).toBe(0);
    expect((await runHomekv(["del", ...at, "--request-id", "d-1", "r2"])).stdout).toMatch(/^deleted 1 /);
    const dir = scratchDir();
    try {
      writeFileSync(join(dir.path, "put.txn"), "then\nput r 2\n");
      const txn = await runHomekv(["txn", ...at, "--request-id", "t-1", "--file", join(dir.path, "put.txn")]);
      expect(txn.stdout).toMatch(/^SUCCEEDED \(then branch\), revision \d+\n$/);
    } finally {
      dir.cleanup();
    }
    expect((await runHomekv(["get", ...at, "r"])).stdout).toBe('r  "2"\n');
    expectOneLineError(await runHomekv(["set", ...at, "--request-id", "", "r=1"]), 2, "--request-id needs a value");
  });
});

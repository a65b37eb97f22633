import { afterEach, describe, expect, test } from "bun:test";
import { credentials, type ServiceError, status as Status } from "@grpc/grpc-js";
import { HomeKvClient, type HomeKvRpcError } from "../../src/client/client.ts";
import { ERROR_CODE_TRAILER, HomeKvError } from "../../src/errors.ts";
import { HomeKvServiceClient } from "../../src/gen/homekv_service.ts";
import { rpcRejection, startTestServer, type TestServer } from "../helpers/server.ts";

/**
 * A client of several endpoints, against real `homekv serve` processes: a dead endpoint (nothing
 * listens), a stopped one (SIGSTOP: it takes connections into its backlog and answers nothing), and a
 * live one. The servers are separate stores, so which one took a write shows where it went.
 */
const DEAD = "127.0.0.1:1";
const TIMEOUT_MS = 1_500;
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function server(): Promise<TestServer> {
  const started = await startTestServer(["--in-memory"]);
  cleanups.push(() => started.stop("SIGKILL"));
  return started;
}

function client(endpoints: string[]): HomeKvClient {
  const created = new HomeKvClient({ endpoints, timeoutMs: TIMEOUT_MS });
  cleanups.push(() => created.close());
  return created;
}

/** Stops the process (SIGSTOP) until the test ends; the cleanup lets it go on so it can be stopped. */
function pause(paused: TestServer): void {
  paused.proc.kill("SIGSTOP");
  cleanups.push(() => paused.proc.kill("SIGCONT"));
}

async function valueOn(at: TestServer, key: string): Promise<string | undefined> {
  const [record] = (await at.client.get([key])).records;
  return record?.value === undefined ? undefined : new TextDecoder().decode(record.value);
}

describe("a dead endpoint (connection refused)", () => {
  test("reads and writes go on to the next endpoint, which then stays the one called first", async () => {
    const live = await server();
    const many = client([DEAD, live.address]);
    expect((await many.set({ k: "v" })).revision).toBe(1);
    expect(many.address).toBe(live.address);
    expect((await many.get(["k"])).records[0]!.modRevision).toBe(1);
    expect((await many.del(["k"])).deleted).toBe(1);
    expect((await many.metrics()).revision).toBe(2);
  });

  test("when no endpoint can be reached, one E_UNREACHABLE names every endpoint and why", async () => {
    const none = client([DEAD, "127.0.0.1:2"]);
    const error = await none.set({ k: "v" }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HomeKvError);
    expect((error as HomeKvError).code).toBe("E_UNREACHABLE");
    expect((error as HomeKvError).message).toBe(
      "cannot reach HomeKV at any endpoint: 127.0.0.1:1: connection refused (is homekv serve running there?); 127.0.0.1:2: connection refused (is homekv serve running there?)",
    );
  });
});

describe("an endpoint stopped before the client connects (SIGSTOP)", () => {
  test("a write never sent to it goes to the next endpoint within the deadline, and the stopped one never applies it", async () => {
    const [stopped, live] = [await server(), await server()];
    pause(stopped);
    const many = client([stopped.address, live.address]);
    const started = performance.now();
    expect((await many.set({ k: "v" })).revision).toBe(1);
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS);
    expect(await valueOn(live, "k")).toBe("v");
    stopped.proc.kill("SIGCONT");
    expect(await valueOn(stopped, "k")).toBeUndefined();
  });
});

describe("an endpoint stopped after the client connected (SIGSTOP)", () => {
  /** A client whose current endpoint is `first`, connected; then `first` stops. */
  async function connectedThenStopped(): Promise<{ first: TestServer; second: TestServer; many: HomeKvClient }> {
    const [first, second] = [await server(), await server()];
    const many = client([first.address, second.address]);
    await many.get(["warm-up"]);
    expect(many.address).toBe(first.address);
    pause(first);
    return { first, second, many };
  }

  test("a read goes on to the next endpoint within the deadline", async () => {
    const { second, many } = await connectedThenStopped();
    await second.client.set({ k: "from second" });
    const started = performance.now();
    expect((await many.get(["k"])).revision).toBe(1);
    expect(performance.now() - started).toBeLessThan(TIMEOUT_MS);
    expect(many.address).toBe(second.address);
  });

  test('a write sent to it fails UNAVAILABLE "outcome unknown", naming the endpoint, and is not sent anywhere else', async () => {
    const { first, second, many } = await connectedThenStopped();
    const error = await rpcRejection(many.set({ k: "v" }));
    expect(error.code).toBe(Status.UNAVAILABLE);
    expect(error.outcomeUnknown).toBe(true);
    expect(error.details).toBe(
      `outcome unknown: the write was sent, then: ${first.address}: no answer before the deadline; it may or may not have been applied`,
    );
    expect((await second.client.metrics()).revision).toBe(0);
  });

  test("a write with a request id is sent again, with that id, to the next endpoint", async () => {
    const { second, many } = await connectedThenStopped();
    expect((await many.set({ k: "v" }, { requestId: "write-1" })).revision).toBe(1);
    expect(await valueOn(second, "k")).toBe("v");
    expect((await many.del(["k"], { requestId: "del-1" })).deleted).toBe(1);
  });

  test("a transaction that only reads goes on to the next endpoint; one that writes is a write", async () => {
    const { first, many } = await connectedThenStopped();
    const read = await many.txn({ success: [{ op: { $case: "get", get: "k" } }] });
    expect(read.succeeded).toBe(true);
    // The read moved the client to the second endpoint; back to the stopped one for the write.
    const toFirst = client([first.address, many.address]);
    expect(
      await toFirst
        .txn({ success: [{ op: { $case: "delete", delete: "k" } }] })
        .catch((e: HomeKvRpcError) => e.outcomeUnknown),
    ).toBe(true);
  });
});

describe("the homekv-error-code trailer", () => {
  test("a server names the code of the HomeKvError it refuses a call with; the client keeps it", async () => {
    const live = await server();
    const stub = new HomeKvServiceClient(live.address, credentials.createInsecure());
    cleanups.push(() => stub.close());
    const error = await new Promise<ServiceError>((resolve) =>
      stub.get({ keys: [""], revision: 0, withTtl: false, serializable: false }, (e) => resolve(e!)),
    );
    expect(error.code).toBe(Status.INVALID_ARGUMENT);
    expect(error.metadata.get(ERROR_CODE_TRAILER)).toEqual(["E_INVALID"]);
    expect((await rpcRejection(live.client.get([""]))).errorCode).toBe("E_INVALID");
    expect((await rpcRejection(live.client.get(["k"], { revision: 5 }))).errorCode).toBe("E_FUTURE_REVISION");
  });
});

test("a client needs one address or endpoints, each listed once", () => {
  expect(() => new HomeKvClient({})).toThrow("a client needs either an address or endpoints");
  expect(() => new HomeKvClient({ endpoints: [] })).toThrow("at least one endpoint");
  expect(() => new HomeKvClient({ endpoints: [DEAD, DEAD] })).toThrow("endpoint 127.0.0.1:1 is listed twice");
});

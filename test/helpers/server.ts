import { afterAll, afterEach, beforeAll, beforeEach, expect } from "bun:test";
import { type ClientOptions, HomeKvClient, HomeKvRpcError } from "../../src/client/client.ts";
import { CLUSTER_FOLLOWER, startClusterFollower } from "./cluster-server.ts";
import { type ServerProcess, type ServerProcessOptions, startServerProcess } from "./processes.ts";
import { waitFor } from "./wait.ts";

/** A `homekv serve` process and a client of it; `stop` closes the client, then stops the process. */
export interface TestServer extends ServerProcess {
  readonly client: HomeKvClient;
}

export interface TestServerOptions extends ServerProcessOptions {
  /** How the client connects (its address is the server's). */
  client?: Omit<ClientOptions, "address">;
  /** Run once the server is up, before it is handed out (a warm-up call, a check). */
  ready?: (server: TestServer) => Promise<void>;
}

/** Starts `homekv serve` (as startServerProcess does) with a client of it. */
export async function startTestServer(
  extraArgs: readonly string[] = [],
  options: TestServerOptions = {},
): Promise<TestServer> {
  const server = await (CLUSTER_FOLLOWER ? startClusterFollower : startServerProcess)(extraArgs, options);
  const client = new HomeKvClient({ ...options.client, address: server.address });
  const started: TestServer = {
    ...server,
    client,
    stop(signal) {
      client.close();
      return server.stop(signal);
    },
  };
  try {
    await options.ready?.(started);
  } catch (error) {
    await started.stop("SIGKILL");
    throw error;
  }
  return started;
}

/** Runs `body` with a server of its own, stopped afterwards whatever happens. */
export async function withServer<T>(
  extraArgs: readonly string[],
  body: (server: TestServer) => Promise<T>,
  options: TestServerOptions = {},
): Promise<T> {
  const server = await startTestServer(extraArgs, options);
  try {
    return await body(server);
  } finally {
    await server.stop();
  }
}

/**
 * One server for the tests of the enclosing file or describe block (or a fresh one for each test
 * with `each: true`), started before them and stopped after them, where it must exit 0. The
 * returned object reads through to the server of the moment, so it is used inside tests and hooks.
 */
export function useServer(extraArgs: readonly string[] = [], options: TestServerOptions & { each?: boolean } = {}) {
  let current: TestServer | undefined;
  const [before, after] = options.each ? [beforeEach, afterEach] : [beforeAll, afterAll];
  before(async () => {
    current = await startTestServer(extraArgs, options);
  });
  after(async () => {
    const stopping = current;
    current = undefined;
    if (stopping) expect(await stopping.stop()).toBe(0);
  });
  const server = (): TestServer => {
    if (!current) throw new Error("useServer: the server runs only while the tests that asked for it run");
    return current;
  };
  return {
    get port() {
      return server().port;
    },
    get address() {
      return server().address;
    },
    get proc() {
      return server().proc;
    },
    get client() {
      return server().client;
    },
    output: () => server().output(),
    stop: (signal?: NodeJS.Signals) => server().stop(signal),
  } satisfies TestServer;
}

/** Waits until the server counts exactly `count` watchers (its metrics). */
export async function waitForWatchers(client: HomeKvClient, count: number, timeoutMs = 10_000): Promise<void> {
  let watchers: number | undefined;
  await waitFor(async () => (watchers = (await client.metrics()).watchers) === count, {
    what: `the server to count ${count} watchers`,
    timeoutMs,
    detail: () => `it counts ${watchers}`,
  });
}

/** Awaits a promise that must reject with a HomeKvRpcError, and returns that error. */
export async function rpcRejection(promise: Promise<unknown>): Promise<HomeKvRpcError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(HomeKvRpcError);
  return error as HomeKvRpcError;
}

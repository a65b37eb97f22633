import { afterEach, expect, test } from "bun:test";
import { HomeKvClient, type WatchEvent } from "../../src/client/client.ts";
import { type ServerProcess, scratchDir, startServerProcess } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A client whose endpoints are the three members of a real replicated cluster: it finds the leader
 * by itself (a follower's E_NOT_LEADER says the write was not applied, so it moves on), keeps
 * writing with request ids while the leader is killed with SIGKILL, and its watch moves to a
 * survivor and goes on where it left off.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** Loopback ports nothing listens on now (each bound by this process, then let go). */
function unusedPorts(count: number): number[] {
  const listeners = Array.from({ length: count }, () =>
    Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } }),
  );
  for (const listener of listeners) listener.stop(true);
  return listeners.map((listener) => listener.port);
}

async function startThreeMembers(): Promise<ServerProcess[]> {
  const names = ["n1", "n2", "n3"];
  const peerPorts = unusedPorts(names.length);
  const initialCluster = names.map((name, i) => `${name}=127.0.0.1:${peerPorts[i]}`).join(",");
  return Promise.all(
    names.map(async (name, i) => {
      const dir = scratchDir(`homekv-${name}-`);
      cleanups.push(dir.cleanup);
      const flags = ["--node-id", name, "--data-dir", dir.path, "--peer-port", String(peerPorts[i])];
      const server = await startServerProcess([...flags, "--initial-cluster", initialCluster, "--raft-tick", "50ms"], {
        env: { HOMEKV_CLUSTER_TOKEN: "test-token" },
      });
      cleanups.push(() => server.stop("SIGKILL"));
      return server;
    }),
  );
}

const WRITES = 30;
const KILL_AT = 10;

test("writes with request ids through all three endpoints go on after the leader is killed; the watch resumes on a survivor without a gap or a repeat", async () => {
  const members = await startThreeMembers();
  const client = new HomeKvClient({ endpoints: members.map((m) => m.address), timeoutMs: 3_000 });
  cleanups.push(() => client.close());
  /** Sends one write (with its id) until it is acknowledged: during an election no endpoint takes it. */
  const write = (i: number) =>
    waitFor(
      () =>
        client.set({ [`w/${i}`]: String(i) }, { requestId: `w-${i}` }).then(
          (result) => result,
          () => undefined,
        ),
      { what: `write w/${i} to be acknowledged by some endpoint`, timeoutMs: 30_000, intervalMs: 50 },
    );
  const first = await write(0);

  const seen: WatchEvent[] = [];
  const stop = new AbortController();
  const watching = (async () => {
    for await (const event of client.watch({ prefix: "w/", startRevision: first.revision }, stop.signal))
      seen.push(event);
  })();
  cleanups.push(() => stop.abort());

  let killedAt = 0;
  let firstAfterKillMs = 0;
  for (let i = 1; i <= WRITES; i++) {
    if (i === KILL_AT) {
      // The client's endpoint of the moment is the one that took the last write: the leader.
      const leader = members.find((m) => m.address === client.address)!;
      leader.proc.kill("SIGKILL");
      await leader.proc.exited;
      killedAt = performance.now();
    }
    await write(i);
    if (i === KILL_AT) firstAfterKillMs = performance.now() - killedAt;
  }
  console.log(
    `client failover: first write acknowledged ${firstAfterKillMs.toFixed(0)} ms after SIGKILL of the leader`,
  );

  const keys = Array.from({ length: WRITES + 1 }, (_, i) => `w/${i}`);
  const { records } = await client.get(keys);
  expect(records.map((r) => new TextDecoder().decode(r.value))).toEqual(keys.map((_, i) => String(i)));

  await waitFor(() => seen.some((e) => e.key === `w/${WRITES}`), {
    what: `the watch to see w/${WRITES}`,
    detail: () => `it saw ${seen.map((e) => `${e.key}@${e.revision}`).join(" ")}`,
  });
  // In revision order, each (revision, key) once, and every key written.
  const order = seen.map((e) => [e.revision, e.key] as const);
  const sorted = [...order].sort(([a, x], [b, y]) => a - b || x.localeCompare(y));
  expect(order).toEqual(sorted);
  expect(new Set(order.map(([r, k]) => `${r}/${k}`)).size).toBe(order.length);
  expect(new Set(seen.map((e) => e.key))).toEqual(new Set(keys));
  stop.abort();
  await watching;
}, 120_000);

import { afterEach, expect, test } from "bun:test";
import { HomeKvClient, type WatchEvent } from "../../src/client/client.ts";
import { freePorts } from "../helpers/free-ports.ts";
import { type ServerProcess, scratchDir, startServerProcess } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A client whose endpoints are the three members of a real replicated cluster, the leader first:
 * it keeps writing with request ids while the leader is killed with SIGKILL in the middle of a
 * write, each write is applied exactly once, and its watch moves to a survivor and goes on where
 * it left off.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function startThreeMembers(): Promise<ServerProcess[]> {
  const names = ["n1", "n2", "n3"];
  const peerPorts = freePorts(names.length);
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

/** The member that leads, once exactly one says it does. */
async function leaderOf(members: ServerProcess[]): Promise<ServerProcess> {
  const clients = members.map((m) => new HomeKvClient({ address: m.address, timeoutMs: 2_000 }));
  let roles: string[] = [];
  try {
    return await waitFor(
      async () => {
        roles = await Promise.all(clients.map((c) => c.metrics().then((m) => m.raftRole, String)));
        return roles.filter((role) => role === "leader").length === 1 && members[roles.indexOf("leader")];
      },
      { what: "one member to lead", timeoutMs: 20_000, intervalMs: 50, detail: () => `roles: ${roles.join(", ")}` },
    );
  } finally {
    for (const c of clients) c.close();
  }
}

const WRITES = 30;
const KILL_AT = 10;

test("writes with request ids go on after the leader is killed during one, each applied once; the watch resumes on a survivor without a gap or a repeat", async () => {
  const members = await startThreeMembers();
  const leader = await leaderOf(members);
  const endpoints = [leader, ...members.filter((m) => m !== leader)].map((m) => m.address);
  const client = new HomeKvClient({ endpoints, timeoutMs: 3_000 });
  cleanups.push(() => client.close());
  /** Sends one write (with its id) until it is acknowledged: during an election no endpoint may take it. */
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

  let inFlightMs = 0;
  for (let i = 1; i <= WRITES; i++) {
    if (i !== KILL_AT) {
      await write(i);
      continue;
    }
    // Killed with this write sent to it (or about to be): whether it was applied, only the id tells.
    expect(client.address).toBe(leader.address);
    const sent = write(i);
    leader.proc.kill("SIGKILL");
    const killedAt = performance.now();
    await sent;
    inFlightMs = performance.now() - killedAt;
  }
  console.log(
    `client failover: the write in flight was acknowledged ${inFlightMs.toFixed(0)} ms after SIGKILL of the leader`,
  );

  const keys = Array.from({ length: WRITES + 1 }, (_, i) => `w/${i}`);
  const { records } = await client.get(keys);
  expect(records.map((r) => new TextDecoder().decode(r.value))).toEqual(keys.map((_, i) => String(i)));
  // One revision per write: none was applied twice, however often it was sent.
  expect((await client.get([])).revision).toBe(first.revision + WRITES);

  await waitFor(() => seen.some((e) => e.key === `w/${WRITES}`), {
    what: `the watch to see w/${WRITES}`,
    detail: () => `it saw ${seen.map((e) => `${e.key}@${e.revision}`).join(" ")}`,
  });
  // In revision order, every key written, each once.
  const revisions = seen.map((e) => e.revision);
  expect(revisions).toEqual([...revisions].sort((a, b) => a - b));
  expect(seen.map((e) => e.key).sort()).toEqual([...keys].sort());
  stop.abort();
  await watching;
}, 120_000);

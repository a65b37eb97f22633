import { afterEach, expect, test } from "bun:test";
import { HomeKvClient } from "../../src/client/client.ts";
import type { RingResponse } from "../../src/gen/homekv_service.ts";
import { text } from "../helpers/bytes.ts";
import { freePorts } from "../helpers/free-ports.ts";
import { type ServerProcess, startServerProcess } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * A partitioned cluster without a list of members (`--bootstrap-expect 3 --partitions 8`), real
 * `homekv serve` processes on loopback ports: three servers started at once find each other through
 * gossip and found the cluster; a fourth, started later with the same flags, asks to be put in
 * the cluster on its own, and takes its share of the replicas.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const NAMES = ["n1", "n2", "n3", "n4"];

function gossipCluster() {
  const gossipPorts = freePorts(NAMES.length);
  const peerPorts = freePorts(NAMES.length);
  const join = gossipPorts.slice(0, 3).map((port) => `127.0.0.1:${port}`);
  return async (name: string): Promise<{ name: string; server: ServerProcess; client: HomeKvClient }> => {
    const i = NAMES.indexOf(name);
    const server = await startServerProcess(
      [
        ...["--node-id", name, "--peer-port", String(peerPorts[i]), "--gossip-port", String(gossipPorts[i])],
        ...["--join", join.join(","), "--bootstrap-expect", "3", "--partitions", "8", "--replicas", "3"],
        ...["--gossip-interval", "100ms", "--raft-tick", "50ms"],
      ],
      { env: { HOMEKV_CLUSTER_TOKEN: "test-token" }, startTimeoutMs: 30_000 },
    );
    const client = new HomeKvClient({ address: server.address, timeoutMs: 10_000 });
    cleanups.push(
      () => server.stop("SIGKILL"),
      () => client.close(),
    );
    return { name, server, client };
  };
}

/** Whether the node's replicas are exactly those the placement gives it, each with a leader known. */
function settledOn(name: string, ring: RingResponse): boolean {
  return ring.partitions.every((p) => p.local === p.replicas.includes(name) && (!p.local || p.leader !== ""));
}

test("three servers with --bootstrap-expect 3 found a partitioned cluster; a fourth joins on its own and takes its share", async () => {
  const start = gossipCluster();
  const founders = await Promise.all(["n3", "n1", "n2"].map(start));
  const [first] = founders;
  await waitFor(() => first!.client.set([["user/1", "ann"]]).catch(() => undefined), {
    what: "the founded cluster to take a Set",
    timeoutMs: 30_000,
  });
  const founded = await first!.client.ring();
  expect(founded.shares.map((share) => [share.nodeId, share.replicas])).toEqual([
    ["n1", 8],
    ["n2", 8],
    ["n3", 8],
  ]);

  const n4 = await start("n4");
  const all = [...founders, n4];
  await waitFor(
    async () => {
      for (const node of all) {
        const ring = await node.client.ring().catch(() => undefined);
        if (ring?.shares.length !== 4 || !settledOn(node.name, ring)) return false;
      }
      return true;
    },
    { what: "n4 to join and the moves to finish", timeoutMs: 60_000 },
  );
  const ring = await n4.client.ring();
  expect(ring.shares.map((share) => share.replicas)).toEqual([6, 6, 6, 6]);
  expect(n4.server.output()).toContain("added this member (n4) to the cluster");
  expect((await n4.client.get(["user/1"])).records.map((r) => r.value && text(r.value))).toEqual(["ann"]);
}, 120_000);

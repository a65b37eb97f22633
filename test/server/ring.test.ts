import { afterEach, expect, test } from "bun:test";
import { status as Status } from "@grpc/grpc-js";
import { HomeKvClient } from "../../src/client/client.ts";
import { place } from "../../src/cluster/ring/placement.ts";
import { HomeKvError } from "../../src/errors.ts";
import { type RingView, ringResponse } from "../../src/server/ring.ts";
import { type HomeKvServer, startServer } from "../../src/server/server.ts";
import { expectOneLineError } from "../helpers/cli.ts";
import { runHomekv } from "../helpers/processes.ts";
import { rpcRejection } from "../helpers/server.ts";

/** The Ring RPC in process: its answer from a node's view, and the refusal of a server that is not partitioned. */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function serve(ring?: () => RingView): Promise<{ server: HomeKvServer; client: HomeKvClient }> {
  const server = await startServer({
    host: "127.0.0.1",
    port: 0,
    nodeId: "n2",
    clusterId: "c",
    ...(ring ? { ring } : {}),
  });
  const client = new HomeKvClient({ address: server.address, timeoutMs: 5_000 });
  cleanups.push(
    () => server.shutdown(),
    () => client.close(),
  );
  return { server, client };
}

const placement = place(undefined, ["n1", "n2", "n3"], { partitions: 4, replicas: 2 });
/** What n2 knows: the leaders of the partitions it holds, one of them without a leader right now. */
const view = (): RingView => {
  const held = placement.flatMap((replicas, partition) => (replicas.includes("n2") ? [partition] : []));
  return {
    partitions: 4,
    replicas: 2,
    placement,
    leaders: new Map(held.map((partition, i) => [partition, i === 0 ? "" : (placement[partition]?.[1] as string)])),
  };
};

test("a node's view: every partition's replicas in placement order, the leaders it knows, the placement's shares", () => {
  const ring = ringResponse(view(), { clusterId: "c", nodeId: "n2" });
  expect(ring.nodeId).toBe("n2");
  expect(ring.replication).toBe(2);
  expect(ring.partitions.map((p) => p.replicas)).toEqual(placement.map((replicas) => [...replicas]));
  const { leaders } = view();
  for (const p of ring.partitions) {
    expect(p.local).toBe(p.replicas.includes("n2"));
    expect(p.leader).toBe(leaders.get(p.partition) ?? "");
  }
  expect(ring.partitions.some((p) => p.local && p.leader === "")).toBe(true);
  expect(ring.shares.map((s) => s.nodeId)).toEqual(["n1", "n2", "n3"]);
  expect(ring.shares.reduce((sum, s) => sum + s.replicas, 0)).toBe(8);
  expect(ring.shares.reduce((sum, s) => sum + s.preferredLeaders, 0)).toBe(4);
  for (const s of ring.shares)
    expect(s.preferredLeaders).toBe(ring.partitions.filter((p) => p.replicas[0] === s.nodeId).length);
});

test("before the meta group has placed the partitions, the ring is unavailable, not empty", () => {
  expect(() => ringResponse({ ...view(), placement: [] }, { clusterId: "c", nodeId: "n2" })).toThrow(
    new HomeKvError("E_UNAVAILABLE", "the placement is not known yet: the cluster is being founded, try again"),
  );
});

test("a partitioned node answers the Ring RPC and homekv ring from its view", async () => {
  const { server, client } = await serve(view);
  const ring = await client.ring();
  expect(ring).toEqual(ringResponse(view(), { clusterId: "c", nodeId: "n2" }));
  const json = await runHomekv(["ring", "--json", "-p", String(server.port)]);
  expect(json.exitCode).toBe(0);
  expect(JSON.parse(json.stdout).shares[1]).toEqual({
    node_id: "n2",
    replicas: ring.shares[1]?.replicas,
    preferred_leaders: ring.shares[1]?.preferredLeaders,
  });
  const { stdout } = await runHomekv(["ring", "-p", String(server.port)]);
  expect(stdout).toContain("4 partitions of 2 replicas, as n2 sees them");
  for (const p of ring.partitions) {
    const leader = p.local ? p.leader || "(none right now)" : "-";
    expect(stdout).toMatch(
      new RegExp(`^${p.partition} +${p.replicas.join(",")} +${leader.replace(/[()]/g, "\\$&")}$`, "m"),
    );
  }
});

test("a server that is not partitioned refuses the Ring RPC, saying why; homekv ring prints one line and exits 1", async () => {
  const { server, client } = await serve();
  const refused = await rpcRejection(client.ring());
  expect(refused.code).toBe(Status.FAILED_PRECONDITION);
  expect(refused.details).toContain("this server is not partitioned");
  expectOneLineError(
    await runHomekv(["ring", "-p", String(server.port)]),
    1,
    "server refused: FAILED_PRECONDITION: this server is not partitioned (a single server, or one Raft group: --partitions 1)",
  );
});

import { afterEach, expect, test } from "bun:test";
import { MetaGroup, takesOffice } from "../../../src/cluster/meta/meta-group.ts";
import { RaftLogEngine } from "../../../src/cluster/raft/group-log-engine.ts";
import { peerChannels } from "../../../src/cluster/replication/peer-channels.ts";
import { RaftHost } from "../../../src/cluster/replication/raft-host.ts";
import { shares } from "../../../src/cluster/ring/placement.ts";
import { type FaultyTransport, withFaults } from "../../../src/cluster/transport/fault-injection.ts";
import { createPeerTransport } from "../../../src/cluster/transport/peer-transport.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { freePorts } from "../../helpers/free-ports.ts";
import { waitFor } from "../../helpers/wait.ts";

const TICK_MS = 10;
const IDS = [1, 2, 3];
const names = new Map(IDS.map((id) => [id, `n${id}`]));

interface MetaNode {
  id: number;
  host: RaftHost;
  transport: FaultyTransport;
  meta: MetaGroup;
  /** Nodes this one's failure detector (gossip, in a server) takes for dead. */
  suspects: Set<number>;
}

const running: MetaNode[] = [];
afterEach(() => {
  for (const node of running.splice(0)) {
    node.host.stop();
    node.transport.close();
  }
});

/** The meta group on three nodes, each in its own host over a real transport (loopback). */
async function startMetaGroup(window?: number): Promise<MetaNode[]> {
  const ports = freePorts(IDS.length);
  const nodes: MetaNode[] = [];
  for (const [i, id] of IDS.entries()) {
    const inner = createPeerTransport({
      clusterId: "meta",
      nodeId: names.get(id)!,
      host: "127.0.0.1",
      port: ports[i]!,
    });
    const transport = withFaults(inner, mulberry32(id));
    for (const [j, other] of IDS.entries())
      if (other !== id) transport.addPeer(names.get(other)!, `127.0.0.1:${ports[j]}`);
    const host = new RaftHost({ channels: peerChannels(transport), names, tickMs: TICK_MS });
    const engine = await RaftLogEngine.open(new MemoryFileSystem(), "/raft");
    const suspects = new Set<number>();
    const meta = new MetaGroup({
      host,
      id,
      voters: IDS,
      log: engine.group(1),
      random: mulberry32(100 + id),
      tickMs: TICK_MS,
      disconnected: (peer) => suspects.has(peer) || transport.connected(names.get(peer)!) === false,
      confirmTimeoutMs: 1_000,
      timestampWindow: window,
    });
    host.start();
    const node = { id, host, transport, meta, suspects };
    nodes.push(node);
    running.push(node);
  }
  return nodes;
}

/** The node that leads the meta group and has taken office (it hands out timestamps). */
function inOffice(nodes: readonly MetaNode[]): Promise<MetaNode> {
  return waitFor(
    async () => {
      for (const node of nodes) {
        if (!node.meta.driver.leads) continue;
        try {
          await node.meta.timestamps(1);
          return node;
        } catch {}
      }
      return undefined;
    },
    { what: "a meta leader handing out timestamps", timeoutMs: 10_000 },
  );
}

test("the leader keeps the placement fitting the nodes: every member applies the same one", async () => {
  const nodes = await startMetaGroup();
  const leader = await inOffice(nodes);
  expect(await leader.meta.propose({ type: "create", partitions: 16, replicas: 3 })).toEqual({ ok: true });
  for (const name of ["n1", "n2", "n3"])
    await leader.meta.propose({ type: "putNode", node: { name, peerAddress: `127.0.0.1:1` } });
  const threeNodes = (node: MetaNode) =>
    [...shares(node.meta.state.placement, ["n1", "n2", "n3"]).values()].every((share) => share.replicas === 16);
  await waitFor(() => nodes.every(threeNodes), { what: "16 replicas on each of n1, n2, n3, on every member" });
  const version = leader.meta.state.placementVersion;
  await leader.meta.propose({ type: "putNode", node: { name: "n4", peerAddress: `127.0.0.1:2` } });
  await waitFor(() => nodes.every((node) => shares(node.meta.state.placement, ["n4"]).get("n4")!.replicas === 12), {
    what: "n4's share of 12 replicas on every member",
  });
  const placements = nodes.map((node) => JSON.stringify(node.meta.state.placement));
  expect(new Set(placements).size).toBe(1);
  expect(leader.meta.state.placementVersion).toBe(version + 1);
});

test("timestamps only increase: across batches, window reservations and a leader's death; a follower hands out none", async () => {
  const nodes = await startMetaGroup(50);
  const leader = await inOffice(nodes);
  const handed: number[] = [];
  for (let i = 0; i < 100; i++) {
    const count = 1 + (i % 7);
    const first = await leader.meta.timestamps(count);
    for (let t = first; t < first + count; t++) handed.push(t);
  }
  const follower = nodes.find((node) => node !== leader)!;
  expect(follower.meta.timestamps(1)).rejects.toThrow(/does not lead the meta group/);
  leader.host.stop();
  leader.transport.close();
  const next = await inOffice(nodes.filter((node) => node !== leader));
  for (let i = 0; i < 20; i++) handed.push(await next.meta.timestamps(1));
  for (let i = 1; i < handed.length; i++) expect(handed[i]!).toBeGreaterThan(handed[i - 1]!);
  // The new leader started above the old one's whole window: a gap.
  expect(handed[handed.length - 20]! - handed[handed.length - 21]!).toBeGreaterThan(1);
});

test("a leader cut off from the others returns no timestamp: its confirming round is never answered", async () => {
  const nodes = await startMetaGroup();
  const leader = await inOffice(nodes);
  const before = await leader.meta.timestamps(1);
  // Cut off without closing a connection (a firewall dropping packets): only a failure detector sees it.
  const others = nodes.filter((node) => node !== leader);
  leader.transport.partition(
    others.map((node) => names.get(node.id)!),
    "both",
  );
  await expect(leader.meta.timestamps(1)).rejects.toThrow(/no linearizable read within 1000 ms/);
  // The others' detectors see the leader gone: they elect one of themselves, which hands out more.
  for (const node of others) node.suspects.add(leader.id);
  const next = await inOffice(others);
  expect(await next.meta.timestamps(1)).toBeGreaterThan(before);
});

test("a leader takes office on its own first entry of its term, not on an older term's it applies late", () => {
  const leader = { role: "leader", term: 5 };
  const empty = (term: number) => ({ index: 9, term, data: null });
  expect(takesOffice(empty(5), leader)).toBe(true);
  // Committed under the leader of term 4, learned only now: a reservation may follow it unapplied.
  expect(takesOffice(empty(4), leader)).toBe(false);
  expect(takesOffice(empty(5), { role: "follower", term: 5 })).toBe(false);
  expect(takesOffice({ index: 9, term: 5, data: new Uint8Array(1) }, leader)).toBe(false);
});

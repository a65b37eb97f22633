import { expect, test } from "bun:test";
import { encodeMetaState } from "../../../src/cluster/meta/meta-format.ts";
import { takesOffice } from "../../../src/cluster/meta/meta-group.ts";
import { shares } from "../../../src/cluster/ring/placement.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";
import { waitFor } from "../../helpers/wait.ts";
import { inOffice, type MetaNode, names, startMetaGroup } from "./meta-nodes.ts";

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
  const nodes = await startMetaGroup({ timestampWindow: 50 });
  const leader = await inOffice(nodes);
  const handed: number[] = [];
  for (let i = 0; i < 100; i++) {
    const count = 1 + (i % 7);
    const first = await leader.meta.timestamps(count);
    for (let t = first; t < first + count; t++) handed.push(t);
  }
  const follower = nodes.find((node) => node !== leader)!;
  expect(await rejectionMessage(follower.meta.timestamps(1))).toMatch(/does not lead the meta group/);
  leader.stop();
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
  expect(await rejectionMessage(leader.meta.timestamps(1))).toMatch(/no linearizable read within 1000 ms/);
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

test("the log is compacted to the state as it grows; a replica restarted on it begins from the snapshot and is the others' equal", async () => {
  const nodes = await startMetaGroup({ timestampWindow: 2, compactAfterEntries: 10 });
  const leader = await inOffice(nodes);
  await leader.meta.propose({ type: "create", partitions: 8, replicas: 3 });
  for (const name of ["n1", "n2", "n3"])
    await leader.meta.propose({ type: "putNode", node: { name, peerAddress: "127.0.0.1:1" } });
  // A window of 2: about a reservation per two timestamps, so some 100 entries.
  let last = 0;
  for (let i = 0; i < 200; i++) {
    const next = await leader.meta.timestamps(1);
    expect(next).toBeGreaterThan(last);
    last = next;
  }
  const follower = nodes.find((node) => node !== leader)!;
  await waitFor(() => follower.meta.state.timestampLimit === leader.meta.state.timestampLimit, {
    what: "the follower to apply the last reservation",
  });
  await waitFor(() => nodes.every((node) => node.compactedIndex() > 50), { what: "every member's log compacted" });
  await follower.restartMeta();
  await waitFor(() => follower.meta.state.timestampLimit === leader.meta.state.timestampLimit, {
    what: "the restarted follower to catch up",
  });
  expect(encodeMetaState(follower.meta.state)).toEqual(encodeMetaState(leader.meta.state));
  expect(follower.meta.driver.groupStatus().status.applied).toBeGreaterThan(100);
  expect(follower.meta.state.placement.length).toBe(8);
});

test("a member cut off while the others compacted past it is sent the snapshot, and is their equal after", async () => {
  const nodes = await startMetaGroup({ timestampWindow: 2, compactAfterEntries: 10 });
  const leader = await inOffice(nodes);
  const cut = nodes.find((node) => node !== leader)!;
  const others = nodes.filter((node) => node !== cut).map((node) => names.get(node.id)!);
  cut.transport.partition(others, "both");
  await leader.meta.propose({ type: "create", partitions: 4, replicas: 2 });
  for (let i = 0; i < 100; i++) await leader.meta.timestamps(1);
  await waitFor(() => leader.compactedIndex() > 40, { what: "the leader's log compacted past 40" });
  expect(cut.meta.driver.appliedIndex).toBeLessThan(leader.compactedIndex());
  cut.transport.heal();
  await waitFor(() => encodeMetaState(cut.meta.state).join() === encodeMetaState(leader.meta.state).join(), {
    what: "the cut member to reach the leader's state",
  });
  expect(cut.meta.state.shape).toEqual({ partitions: 4, replicas: 2 });
});

const founding = {
  partitions: 8,
  replicas: 3,
  nodes: ["n1", "n2", "n3"].map((name, i) => ({ name, peerAddress: `127.0.0.1:${i + 1}` })),
};

test("founding: the first leader creates the cluster and puts every founding node; the first placement holds them all", async () => {
  const nodes = await startMetaGroup({ founding });
  await waitFor(() => nodes.every((node) => node.placements.length > 0), { what: "a placement on every member" });
  for (const node of nodes) {
    // No placement of one or two nodes came first: replicas would have been made only to move.
    expect(node.meta.state.placementVersion).toBe(1);
    expect(node.placements).toEqual([node.meta.state.placement]);
    expect([...shares(node.meta.state.placement, ["n1", "n2", "n3"]).values()].map((s) => s.replicas)).toEqual([
      8, 8, 8,
    ]);
    expect([...node.meta.state.nodes.values()]).toEqual(founding.nodes);
  }
  // A restarted member is told of the placement again, from its log, before anything new happens.
  const [first] = nodes;
  await first!.restartMeta();
  await waitFor(() => first!.placements.length >= 2, { what: "the placement told again after a restart" });
  expect(first!.placements.at(-1)).toEqual(nodes[1]!.meta.state.placement);
});

test("founding cut short (the cluster created, no node put) is finished by the next leader", async () => {
  const nodes = await startMetaGroup();
  const leader = await inOffice(nodes);
  expect(await leader.meta.propose({ type: "create", partitions: 8, replicas: 3 })).toEqual({ ok: true });
  await waitFor(() => nodes.every((node) => node.meta.state.shape !== undefined), { what: "the shape everywhere" });
  for (const node of nodes) await node.restartMeta(founding);
  await waitFor(() => nodes.every((node) => node.meta.state.placementVersion === 1), {
    what: "the first placement, made once the founding nodes are put",
  });
  for (const node of nodes) expect([...node.meta.state.nodes.keys()].sort()).toEqual(["n1", "n2", "n3"]);
});

import { describe, expect, test } from "bun:test";
import { decode, encode } from "../../../src/cluster/gossip/codec.ts";
import {
  createGossiper,
  type Gossiper,
  type GossiperOptions,
  type Member,
  type Outgoing,
} from "../../../src/cluster/gossip/index.ts";
import type { GossipMessage } from "../../../src/cluster/gossip/messages.ts";
import { mulberry32 } from "../../../src/random.ts";

function gossiper(id: string, options: Partial<GossiperOptions> = {}): Gossiper {
  return createGossiper({
    clusterId: "c1",
    nodeId: id,
    generation: 1,
    gossipAddress: `${id}:7946`,
    grpcAddress: `${id}:20001`,
    seeds: ["a:7946"],
    random: mulberry32(id.charCodeAt(0)),
    nowMs: 0,
    ...options,
  });
}

/** A lossless network without delay: delivers everything, and the answers, until it is quiet. */
class Wire {
  readonly sent: Outgoing[] = [];
  private readonly nodes = new Map<string, Gossiper>();

  constructor(...nodes: Gossiper[]) {
    for (const node of nodes) this.plug(node);
  }

  plug(node: Gossiper): void {
    this.nodes.set(`${node.nodeId}:7946`, node);
  }

  unplug(id: string): void {
    this.nodes.delete(`${id}:7946`);
  }

  deliver(from: string, outgoing: readonly Outgoing[], nowMs: number): void {
    for (const datagram of outgoing) {
      this.sent.push(datagram);
      const answer = this.nodes.get(datagram.to)?.receive(`${from}:7946`, datagram.datagram, nowMs) ?? [];
      this.deliver(datagram.to.split(":")[0]!, answer, nowMs);
    }
  }

  round(nowMs: number): void {
    for (const node of this.nodes.values()) this.deliver(node.nodeId, node.tick(nowMs), nowMs);
  }
}

const message = (datagram: Uint8Array): GossipMessage => {
  const result = decode(datagram, { clusterId: "c1", datagramBytesMax: 65_507 });
  if (!result.ok) throw new Error(result.detail);
  return result.message;
};
const byId = (members: Member[]) => Object.fromEntries(members.map((m) => [m.nodeId, m]));

describe("Gossiper", () => {
  test("a node joins through its seed: Syn, Ack, Ack2, and then each knows the other", () => {
    const a = gossiper("a");
    const b = gossiper("b");
    const [syn, ...more] = b.tick(100);
    expect(more).toEqual([]);
    expect(syn!.to).toBe("a:7946");
    expect(message(syn!.datagram)).toMatchObject({
      kind: "syn",
      senderId: "b",
      complete: true,
      digests: [{ nodeId: "b", generation: 1 }],
    });
    const [ack] = a.receive("b:7946", syn!.datagram, 110);
    expect(message(ack!.datagram)).toMatchObject({
      kind: "ack",
      requests: [{ nodeId: "b", generation: 0, maxVersion: 0 }],
      deltas: [{ nodeId: "a", fromVersion: 0 }],
    });
    const [ack2] = b.receive("a:7946", ack!.datagram, 120);
    expect(message(ack2!.datagram)).toMatchObject({ kind: "ack2", deltas: [{ nodeId: "b", fromVersion: 0 }] });
    expect(a.receive("b:7946", ack2!.datagram, 130)).toEqual([]);

    const seenByA = byId(a.members(130));
    expect(seenByA.b).toMatchObject({
      grpcAddress: "b:20001",
      gossipAddress: "b:7946",
      status: "alive",
      generation: 1,
      heartbeat: 1,
      isSelf: false,
      lastSeenMs: 130,
    });
    expect(seenByA.a).toMatchObject({ status: "alive", phi: 0, isSelf: true, lastSeenMs: 130 });
    expect(byId(b.members(130)).a).toMatchObject({ grpcAddress: "a:20001", status: "alive", heartbeat: 0 });
  });

  test("a seed skips its own address: alone, it sends nothing", () => {
    expect(gossiper("a").tick(0)).toEqual([]);
  });

  test("each tick beats the heart once; a peer's phi rises while it is silent and falls when it beats", () => {
    const a = gossiper("a");
    const b = gossiper("b");
    const wire = new Wire(a, b);
    for (let t = 0; t <= 5_000; t += 500) wire.round(t);
    expect(byId(b.members(5_000)).a!.heartbeat).toBe(11);
    wire.unplug("b");
    let previous = 0;
    const statuses = new Set<string>();
    let t = 5_000;
    for (; byId(a.members(t)).b!.status !== "dead"; t += 100) {
      const { phi, status } = byId(a.members(t)).b!;
      expect(phi).toBeGreaterThanOrEqual(previous);
      previous = phi;
      statuses.add(status);
      a.tick(t);
    }
    // Dead after mean (~500) + acceptable pause (1500) + 5.6 σ (σ ≥ 100) without a heartbeat.
    expect(t - 5_000).toBeGreaterThan(2_000);
    expect(t - 5_000).toBeLessThan(3_500);
    expect([...statuses]).toEqual(["alive", "suspect"]);
    expect(a.liveness("b", t)).toEqual({ status: "dead", phi: byId(a.members(t)).b!.phi });
    expect(a.liveness("a", t)).toEqual({ status: "alive", phi: 0 });
    expect(a.liveness("nobody", t)).toBeUndefined();
    wire.plug(b);
    wire.deliver("b", b.tick(t), t);
    expect(byId(a.members(t)).b).toMatchObject({ status: "alive", heartbeat: 12 });
  });

  test("bad datagrams are dropped and counted by reason, never thrown", () => {
    const a = gossiper("a");
    const good = gossiper("b").tick(0)[0]!.datagram;
    expect(a.receive("x:1", encode({ ...message(good), clusterId: "c2" }), 0)).toEqual([]);
    expect(a.receive("x:1", new Uint8Array([1, 2, 3]), 0)).toEqual([]);
    expect(a.receive("x:1", good.subarray(0, good.byteLength - 1), 0)).toEqual([]);
    expect(a.receive("x:1", new Uint8Array(2000), 0)).toEqual([]);
    const flipped = good.slice();
    flipped[good.byteLength - 6]! ^= 0x40;
    expect(a.receive("x:1", flipped, 0)).toEqual([]);
    expect(a.receive("a:7946", synFromAnotherA(), 0)).toEqual([]);
    const counters = a.counters();
    expect(counters.datagramsReceived).toBe(6);
    expect(counters.datagramsDropped).toMatchObject({
      "foreign-cluster": 1,
      truncated: 2,
      oversized: 1,
      checksum: 1,
      "from-self": 1,
    });
    expect(counters.datagramsSent).toBe(0);
  });

  test("a restarted node (a higher generation) replaces its old state everywhere; old deltas are refused", () => {
    const a = gossiper("a");
    const oldB = gossiper("b");
    const wire = new Wire(a, oldB);
    wire.round(0);
    wire.round(500);
    const oldAck2 = wire.sent.find((d) => d.to === "a:7946" && message(d.datagram).kind === "ack2")!;
    wire.unplug("b");
    const newB = gossiper("b", { generation: 2, nowMs: 1_000, grpcAddress: "b:30001" });
    wire.plug(newB);
    wire.round(1_000);
    expect(byId(a.members(1_000)).b).toMatchObject({ generation: 2, grpcAddress: "b:30001", status: "alive" });
    a.receive("b:7946", oldAck2.datagram, 1_100);
    expect(a.counters().deltasRejected["stale-generation"]).toBe(1);
    expect(byId(a.members(1_100)).b).toMatchObject({ generation: 2, grpcAddress: "b:30001" });
  });

  test("leave: every peer is told at once and shows the node as left; lingering, the leaver still gossips", () => {
    const [a, b, c] = ["a", "b", "c"].map((id) => gossiper(id));
    const wire = new Wire(a!, b!, c!);
    for (let t = 0; t <= 1_500; t += 500) wire.round(t);
    const goodbyes = c!.leave(1_600);
    expect(goodbyes.map((d) => d.to).sort()).toEqual(["a:7946", "b:7946"]);
    expect(message(goodbyes[0]!.datagram)).toMatchObject({ kind: "ack2", deltas: [{ nodeId: "c", fromVersion: 0 }] });
    expect(c!.leave(1_600)).toEqual([]);
    // The push to b is lost.
    wire.deliver(
      "c",
      goodbyes.filter((d) => d.to === "a:7946"),
      1_600,
    );
    expect(byId(a!.members(1_600)).c!.status).toBe("left");
    expect(byId(b!.members(1_600)).c!.status).toBe("alive");
    expect(byId(c!.members(1_600)).c!.status).toBe("left");
    // b hears it from c's own gossip while c lingers.
    wire.unplug("a");
    wire.deliver("c", c!.tick(2_000), 2_000);
    expect(byId(b!.members(2_000)).c!.status).toBe("left");
    // Nobody gossips to a node that left.
    for (let t = 2_000; t < 10_000; t += 500) for (const out of a!.tick(t)) expect(out.to).not.toBe("c:7946");
  });

  test("deltas about the receiver itself, or that would leave a gap, are refused and counted", () => {
    const a = gossiper("a");
    const ack2 = (deltas: object[]) =>
      encode({ kind: "ack2", clusterId: "c1", senderId: "x", deltas } as GossipMessage);
    const entries = [{ key: "hb", value: "9", version: 7 }];
    a.receive("x:1", ack2([{ nodeId: "a", generation: 9, fromVersion: 0, entries }]), 0);
    a.receive("x:1", ack2([{ nodeId: "q", generation: 1, fromVersion: 6, entries }]), 0);
    expect(a.counters().deltasRejected).toMatchObject({ self: 1, gap: 1 });
    expect(a.members(0).map((m) => m.nodeId)).toEqual(["a"]);
    expect(byId(a.members(0)).a!.generation).toBe(1);
  });

  test("nodesMax bounds the table: past it new nodes are refused", () => {
    const a = gossiper("a", { nodesMax: 2 });
    const deltas = ["p", "q", "r"].map((id) => ({
      nodeId: id,
      generation: 1,
      fromVersion: 0,
      entries: [{ key: "hb", value: "1", version: 1 }],
    }));
    a.receive("x:1", encode({ kind: "ack2", clusterId: "c1", senderId: "x", deltas }), 0);
    expect(a.members(0).map((m) => m.nodeId)).toEqual(["a", "p", "q"]);
    expect(a.counters().deltasRejected["nodes-max"]).toBe(1);
  });

  test("a dead peer is forgotten after forgetAfterMs, then quarantined: its old state cannot bring it back", () => {
    const a = gossiper("a", { forgetAfterMs: 10_000 });
    const b = gossiper("b");
    const wire = new Wire(a, b);
    wire.round(0);
    const bState = wire.sent.find((d) => d.to === "a:7946" && message(d.datagram).kind === "ack2")!;
    wire.unplug("b");
    let t = 0;
    for (; byId(a.members(t)).b !== undefined; t += 500) a.tick(t);
    expect(t).toBeGreaterThanOrEqual(10_000);
    expect(t).toBeLessThan(10_000 + 4_000);
    expect(a.counters().nodesForgotten).toBe(1);
    a.receive("b:7946", bState.datagram, t);
    expect(a.counters().deltasRejected.quarantined).toBe(1);
    expect(byId(a.members(t)).b).toBeUndefined();
    // A new generation is a new process: welcome.
    const newB = gossiper("b", { generation: 2, nowMs: t });
    wire.plug(newB);
    wire.round(t);
    expect(byId(a.members(t)).b).toMatchObject({ generation: 2, status: "alive" });
  });

  test("a state larger than a datagram arrives in pieces, no datagram over the limit", () => {
    const metadata = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`key${i}`, `${i % 10}`.repeat(200)]));
    const a = gossiper("a", { metadata });
    const b = gossiper("b");
    const wire = new Wire(a, b);
    let rounds = 0;
    while (Object.keys(byId(b.members(rounds * 500)).a?.metadata ?? {}).length < 25) wire.round(++rounds * 500);
    expect(byId(b.members(rounds * 500)).a!.metadata).toEqual(metadata);
    expect(rounds).toBeGreaterThan(1);
    expect(rounds).toBeLessThan(8);
    expect(Math.max(...wire.sent.map((d) => d.datagram.byteLength))).toBeLessThanOrEqual(1400);
    expect(Math.max(...wire.sent.map((d) => d.datagram.byteLength))).toBeGreaterThan(1200);
  });

  test("metadata: published to peers; the gossiper's own keys are not the caller's to set", () => {
    const a = gossiper("a", { metadata: { zone: "attic" } });
    const b = gossiper("b");
    const wire = new Wire(a, b);
    wire.round(0);
    a.setMetadata("load", "0.5");
    wire.round(500);
    expect(byId(b.members(500)).a!.metadata).toEqual({ zone: "attic", load: "0.5" });
    expect(() => a.setMetadata("hb", "7")).toThrow(/reserved/);
  });

  test("options are checked, and time must not go back", () => {
    expect(() => gossiper("a b")).toThrow(/invalid node id/);
    expect(() => gossiper("a", { suspectPhi: 9 })).toThrow(/suspectPhi/);
    expect(() => gossiper("a", { datagramBytesMax: 100 })).toThrow(/datagramBytesMax/);
    const a = gossiper("a", { nowMs: 1_000 });
    expect(() => a.tick(999)).toThrow(/monotonic/);
  });
});

/** A Syn whose sender is "a": what node a gets back when its datagrams loop, or when another process took its id. */
function synFromAnotherA(): Uint8Array {
  return gossiper("a", { seeds: ["z:1"] }).tick(0)[0]!.datagram;
}

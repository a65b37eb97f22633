import { afterEach, expect, test } from "bun:test";
import { encodeMessages } from "../../../src/cluster/raft/message-codec.ts";
import type { Message } from "../../../src/cluster/raft/types.ts";
import { peerChannels } from "../../../src/cluster/replication/peer-channels.ts";
import { PeerLink } from "../../../src/cluster/replication/peer-link.ts";
import { createPeerTransport } from "../../../src/cluster/transport/peer-transport.ts";
import { waitFor } from "../../helpers/wait.ts";

const transports: ReturnType<typeof createPeerTransport>[] = [];
afterEach(() => {
  for (const transport of transports.splice(0)) transport.close();
});

function pair() {
  const [a, b] = ["a", "b"].map((nodeId) => {
    const transport = createPeerTransport({ clusterId: "t", nodeId, host: "127.0.0.1", port: 0 });
    transports.push(transport);
    return transport;
  }) as [ReturnType<typeof createPeerTransport>, ReturnType<typeof createPeerTransport>];
  a.addPeer("b", b.address);
  b.addPeer("a", a.address);
  // Raft node 1 is transport node a, 2 is b.
  const names = new Map([
    [1, "a"],
    [2, "b"],
  ]);
  return { a, b, names };
}

const heartbeat = (from: number, to: number, commit = 7): Message => ({
  type: "heartbeat",
  from,
  to,
  term: 3,
  commit,
  round: 0,
});

test("a Ready's messages to one peer travel as one payload and arrive stepped in order; other groups' and spoofed senders' are not taken", async () => {
  const { a, b, names } = pair();
  const received: Message[] = [];
  const linkB = new PeerLink({ channels: peerChannels(b), names });
  linkB.join(5, { receive: (m) => received.push(m) });
  const outboxA = new PeerLink({ channels: peerChannels(a), names }).join(5, { receive: () => {} });
  outboxA.send([heartbeat(1, 2), heartbeat(1, 2, 8)]);
  await waitFor(() => received.length === 2, { what: "both heartbeats at b" });
  expect(received.map((m) => (m.type === "heartbeat" ? m.commit : -1))).toEqual([7, 8]);
  expect(a.stats().peers.b!.payloadsSent).toBe(1);
  // Another group's message, and one claiming to come from node 2 over a's connection, are dropped.
  a.send("b", encodeMessages([{ group: 6, message: heartbeat(1, 2) }]));
  a.send("b", encodeMessages([{ group: 5, message: heartbeat(2, 2) }]));
  await waitFor(() => linkB.stats().misrouted === 2, { what: "b to drop two misrouted messages" });
  expect(received.length).toBe(2);
});

test("a message from a node the link does not name yet is taken when learnName takes it, and answered; else dropped", async () => {
  const { a, b } = pair();
  const received: Message[] = [];
  // b knows only itself (node 2): node 1, a, joined the cluster after b last heard of its nodes.
  const namesB = new Map([[2, "b"]]);
  const asked: [number, string][] = [];
  const linkB = new PeerLink({
    channels: peerChannels(b),
    names: namesB,
    learnName: (id, name) => {
      asked.push([id, name]);
      if (id !== 1) return false;
      namesB.set(id, name);
      return true;
    },
  });
  const outboxB = linkB.join(5, { receive: (m) => received.push(m) });
  // Node 9 over a's connection is not taken; node 1 is, and named.
  a.send("b", encodeMessages([{ group: 5, message: heartbeat(9, 2) }]));
  a.send("b", encodeMessages([{ group: 5, message: heartbeat(1, 2) }]));
  await waitFor(() => received.length === 1, { what: "node 1's heartbeat at b" });
  expect(linkB.stats().misrouted).toBe(1);
  expect(asked).toEqual([
    [9, "a"],
    [1, "a"],
  ]);
  // b answers node 1 now that it names it.
  const atA: Message[] = [];
  new PeerLink({ channels: peerChannels(a), names: new Map([[2, "b"]]) }).join(5, { receive: (m) => atA.push(m) });
  outboxB.send([heartbeat(2, 1)]);
  await waitFor(() => atA.length === 1, { what: "b's answer at a" });
});

test("a payload that does not decode is dropped and counted, logged once; the link goes on", async () => {
  const { a, b, names } = pair();
  const received: Message[] = [];
  const lines: string[] = [];
  const channels = peerChannels(b);
  const link = new PeerLink({ channels, names, log: (l) => lines.push(l) });
  link.join(1, { receive: (m) => received.push(m) });
  // The Raft channel's byte, then a batch that claims more messages than it holds, and one cut short.
  a.send("b", new Uint8Array([1, 5]));
  a.send("b", new Uint8Array([1, 1, 9]));
  // Another channel's byte that nobody receives on: not the link's to count.
  a.send("b", new Uint8Array([99, 1, 2]));
  a.send("b", encodeMessages([{ group: 1, message: heartbeat(1, 2) }]));
  await waitFor(() => received.length === 1, { what: "the good payload to arrive" });
  expect(link.stats().undecodable).toBe(2);
  expect(channels.unrouted()).toBe(1);
  expect(lines.length).toBe(1);
  expect(lines[0]).toContain("dropped a Raft payload from a that does not decode");
});

test("the messages many groups send to a peer in one turn leave as one payload, each stepped into its own group; a group that left takes none", async () => {
  const { a, b, names } = pair();
  const received = new Map<number, Message[]>();
  const linkB = new PeerLink({ channels: peerChannels(b), names });
  const linkA = new PeerLink({ channels: peerChannels(a), names });
  const groups = [3, 4, 5, 6];
  for (const group of groups) {
    received.set(group, []);
    linkB.join(group, { receive: (m) => received.get(group)!.push(m) });
  }
  const outboxes = groups.map((group) => linkA.join(group, { receive: () => {} }));
  for (const [i, outbox] of outboxes.entries()) outbox.send([heartbeat(1, 2, 10 + i)]);
  outboxes[0]!.send([heartbeat(1, 2, 20)]);
  await waitFor(() => [...received.values()].flat().length === 5, { what: "five heartbeats at b" });
  expect(linkA.stats()).toMatchObject({ payloadsSent: 1, messagesSent: 5 });
  expect(a.stats().peers.b!.payloadsSent).toBe(1);
  const commits = (group: number) => received.get(group)!.map((m) => (m.type === "heartbeat" ? m.commit : -1));
  expect(commits(3)).toEqual([10, 20]);
  expect(commits(6)).toEqual([13]);
  linkB.leave(6);
  outboxes[3]!.send([heartbeat(1, 2, 30)]);
  await waitFor(() => linkB.stats().misrouted === 1, { what: "b to drop the message for the group that left" });
  expect(commits(6)).toEqual([13]);
});

test("a turn whose messages to a peer pass the transport's payload bound still reaches it: the link splits them, in order, and the other groups' heartbeats are not lost with them", async () => {
  const { a, b, names } = pair();
  const received = new Map<number, Message[]>();
  const linkB = new PeerLink({ channels: peerChannels(b), names });
  const linkA = new PeerLink({ channels: peerChannels(a), names });
  for (const group of [1, 2, 3]) {
    received.set(group, []);
    linkB.join(group, { receive: (m) => received.get(group)!.push(m) });
  }
  const outboxes = [1, 2, 3].map((group) => linkA.join(group, { receive: () => {} }));
  // Two groups catching the peer up, each with 9 appends of 1 MiB (a follower's flow window
  // holds 16 MiB): 18 MiB to one peer in one turn, over the transport's 16 MiB payload bound.
  const appends = (count: number): Message[] =>
    Array.from({ length: count }, (_, i) => ({
      type: "append",
      from: 1,
      to: 2,
      term: 3,
      prevIndex: i,
      prevTerm: i === 0 ? 0 : 3,
      commit: 0,
      entries: [{ index: i + 1, term: 3, data: new Uint8Array(1 << 20).fill(i) }],
    }));
  outboxes[0]!.send(appends(9));
  outboxes[1]!.send(appends(9));
  outboxes[2]!.send([heartbeat(1, 2)]);
  const total = () => [...received.values()].flat().length;
  await waitFor(() => total() === 19 || a.stats().peers.b!.drops > 0, {
    what: "the 19 messages at b, or a payload dropped at a",
  });
  expect(a.stats().peers.b!.drops).toBe(0);
  await waitFor(() => total() === 19, { what: "the 19 messages at b" });
  for (const group of [1, 2])
    expect(received.get(group)!.map((m) => (m.type === "append" ? m.prevIndex : -1))).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8,
    ]);
  expect(received.get(3)!.length).toBe(1);
});

test("a group the codec cannot carry (id 0) is refused when it joins, not by every flush of the link after it", async () => {
  const { a, b, names } = pair();
  const received: Message[] = [];
  new PeerLink({ channels: peerChannels(b), names }).join(1, { receive: (m) => received.push(m) });
  const link = new PeerLink({ channels: peerChannels(a), names });
  const outbox = link.join(1, { receive: () => {} });
  expect(() => link.join(0, { receive: () => {} })).toThrow("group 0");
  outbox.send([heartbeat(1, 2)]);
  await waitFor(() => received.length === 1, { what: "group 1's heartbeat at b" });
});

test("groups numbering their members themselves: a message finds its node by the group's own map, and one for a replica of this node that is gone is dropped", async () => {
  const { a, b, names } = pair();
  const received: Message[] = [];
  // Group 7's replicas: 11 on a, 12 on b; b's replica had id 10 before it was removed and added back.
  const replicas = new Map([
    [11, "a"],
    [12, "b"],
    [10, "b"],
  ]);
  const linkB = new PeerLink({ channels: peerChannels(b), names });
  linkB.join(7, { receive: (m) => received.push(m), names: replicas, self: 12 });
  const outboxA = new PeerLink({ channels: peerChannels(a), names }).join(7, {
    receive: () => {},
    names: replicas,
    self: 11,
  });
  outboxA.send([heartbeat(11, 10, 5), heartbeat(11, 12, 6)]);
  await waitFor(() => received.length === 1 && linkB.stats().misrouted === 1, {
    what: "the heartbeat for 12 taken, the one for the old 10 dropped",
  });
  expect(received[0]).toMatchObject({ to: 12, commit: 6 });
  // A sender claiming a replica id that is not the connection's node's is not taken either.
  a.send("b", encodeMessages([{ group: 7, message: heartbeat(12, 12) }]));
  await waitFor(() => linkB.stats().misrouted === 2, { what: "the spoofed sender dropped" });
  expect(received.length).toBe(1);
});

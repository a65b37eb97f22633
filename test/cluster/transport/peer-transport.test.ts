import { afterEach, describe, expect, test } from "bun:test";
import { encodeFrame, FRAME_HEADER_BYTES } from "../../../src/io/format/frame.ts";
import { bytes } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import {
  closeAll,
  introduce,
  RawPeer,
  sendText,
  startNode,
  type TestNode,
  waitConnected,
  waitReceived,
} from "./nodes.ts";

afterEach(closeAll);

/** Lets one event-loop turn end, so that what is sent after it belongs to the next. */
const nextTurn = () => new Promise<void>((resolve) => setImmediate(resolve));

const numbered = (prefix: string, count: number) => Array.from({ length: count }, (_, i) => `${prefix}${i}`);

describe("peer transport over loopback", () => {
  test("three nodes exchange payloads, in order per pair, over one connection per pair", async () => {
    const nodes = ["a", "b", "c"].map((id) => startNode(id));
    introduce(nodes);
    // Sent before any connection is up, and over several turns: queued, then delivered in order.
    for (let turn = 0; turn < 5; turn++) {
      for (const from of nodes)
        for (const to of nodes) if (to !== from) sendText(from, to.id, numbered(`${from.id}>${to.id}#${turn}.`, 40));
      await nextTurn();
    }
    for (const node of nodes) await waitReceived(node, 2 * 5 * 40);
    for (const to of nodes) {
      for (const from of nodes) {
        if (from === to) continue;
        const got = to.received.filter((line) => line.startsWith(`${from.id}:`)).map((line) => line.slice(2));
        const sent = [0, 1, 2, 3, 4].flatMap((turn) => numbered(`${from.id}>${to.id}#${turn}.`, 40));
        expect(got).toEqual(sent);
      }
    }
    // Both sides of each pair dialed; one connection per pair is left.
    for (const node of nodes) {
      await waitFor(() => node.transport.stats().openConnections === 2, {
        what: `${node.id} to keep one connection to each of its two peers`,
        detail: () => JSON.stringify(node.transport.stats()),
      });
    }
    const stats = nodes[0]!.transport.stats();
    expect(stats.peers.b).toMatchObject({ connected: true, payloadsSent: 200, payloadsReceived: 200, drops: 0 });
  });

  test("a node that only knows a peer from its connection answers over that connection", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    a.transport.send("b", bytes("too-early"));
    expect(a.transport.stats().unknownPeerDrops).toBe(1);
    b.transport.addPeer("a", a.transport.address);
    await waitConnected(a, "b");
    a.transport.send("b", bytes("reply"));
    await waitReceived(b, 1);
    expect(b.received).toEqual(["a:reply"]);
    expect(a.transport.stats().peers.b).toMatchObject({ address: undefined, connected: true });
  });

  test("a second connection dialed by the same peer replaces the first, which it has given up on", async () => {
    const a = startNode("a");
    const first = await RawPeer.connect(a.transport.address);
    await first.authenticate("z", "a");
    const second = await RawPeer.connect(a.transport.address);
    await second.authenticate("z", "a");
    await first.waitClosed("the node to close the older connection of z");
    expect(second.closed).toBe(false);
    second.writeRaw(encodeFrame(bytes("over-the-new-one")));
    await waitReceived(a, 1);
    expect(a.received).toEqual(["z:over-the-new-one"]);
    expect(a.transport.stats().openConnections).toBe(1);
  });

  test("every payload queued to a peer in one turn leaves in one socket write", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    introduce([a, b]);
    await waitConnected(a, "b");
    await waitConnected(b, "a");
    const before = a.transport.stats().peers.b!;
    sendText(a, "b", numbered("m", 500));
    await waitReceived(b, 500);
    const after = a.transport.stats().peers.b!;
    expect(after.writes - before.writes).toBe(1);
    expect(after.payloadsSent - before.payloadsSent).toBe(500);
    // The next turn's payloads make the next write.
    sendText(a, "b", ["x", "y"]);
    await waitReceived(b, 502);
    expect(a.transport.stats().peers.b!.writes - after.writes).toBe(1);
  });

  test("a batch larger than the socket takes is finished on drain, in order", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    const sizes: number[] = [];
    b.transport.onMessage((_from, payload) => sizes.push(payload.byteLength === 1_000_000 ? payload[0]! : -1));
    introduce([a, b]);
    await waitConnected(a, "b");
    for (let i = 0; i < 24; i++) a.transport.send("b", new Uint8Array(1_000_000).fill(i));
    await waitFor(() => sizes.length === 24, { what: "b to receive 24 payloads of 1 MB", detail: () => `${sizes}` });
    expect(sizes).toEqual(Array.from({ length: 24 }, (_, i) => i));
    const stats = a.transport.stats().peers.b!;
    // 24 MB is more than a loopback socket buffer: the first write was partial.
    expect(stats.writes).toBeGreaterThan(1);
    expect(stats).toMatchObject({ payloadsSent: 24, drops: 0, queuedBytes: 0 });
  });

  test("a peer that restarts is reconnected, and what was queued meanwhile is delivered", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    introduce([a, b]);
    await waitConnected(a, "b");
    sendText(a, "b", ["before"]);
    await waitReceived(b, 1);
    const port = Number(b.transport.address.split(":")[1]);
    b.transport.close();
    await waitFor(() => !a.transport.stats().peers.b!.connected, { what: "a to see b gone" });
    sendText(a, "b", ["while-down-1", "while-down-2"]);
    // The new b knows no peers: a's reconnection attempts alone bring the two together.
    const b2 = startNode("b", { port });
    await waitConnected(a, "b");
    await waitReceived(b2, 2);
    sendText(a, "b", ["after"]);
    b2.transport.send("a", bytes("hello-from-new-b"));
    await waitReceived(b2, 3);
    await waitReceived(a, 1);
    expect(b2.received).toEqual(["a:while-down-1", "a:while-down-2", "a:after"]);
    expect(a.received).toEqual(["b:hello-from-new-b"]);
    expect(a.transport.stats().peers.b!.reconnects).toBe(1);
  });

  test("a full queue drops new payloads and counts them", async () => {
    const b = startNode("b");
    const address = b.transport.address;
    const port = Number(address.split(":")[1]);
    b.transport.close();
    const a = startNode("a", { queuePayloadsMax: 10 });
    a.transport.addPeer("b", address);
    sendText(a, "b", numbered("q", 25));
    a.transport.send("nobody", bytes("lost"));
    const stats = a.transport.stats();
    expect(stats.peers.b).toMatchObject({ connected: false, queuedPayloads: 10, drops: 15 });
    expect(stats.unknownPeerDrops).toBe(1);
    const b2 = startNode("b", { port });
    await waitReceived(b2, 10);
    expect(b2.received).toEqual(numbered("a:q", 10));
  });

  test("a payload over the size limit is dropped when sent", async () => {
    const [a, b] = [startNode("a", { payloadBytesMax: 100 }), startNode("b")];
    introduce([a, b]);
    a.transport.send("b", new Uint8Array(101));
    sendText(a, "b", ["fits"]);
    await waitReceived(b, 1);
    expect(b.received).toEqual(["a:fits"]);
    expect(a.transport.stats().peers.b!.drops).toBe(1);
  });
});

describe("handshake", () => {
  /** Waits until each node has refused, or been refused, at least `attempts` times. */
  async function waitRefusals(nodes: TestNode[], attempts: number): Promise<void> {
    for (const node of nodes) {
      await waitFor(
        () => {
          const stats = node.transport.stats();
          return stats.refused + stats.refusedByPeers >= attempts;
        },
        { what: `${node.id} to see ${attempts} refused handshakes`, detail: () => node.logged.join("\n") },
      );
    }
  }

  test("a wrong token is refused, delivers nothing, and is logged once however often it is retried", async () => {
    const a = startNode("a", { token: "alpha" });
    const b = startNode("b", { token: "beta" });
    const c = startNode("c");
    introduce([a, b, c]);
    sendText(a, "b", ["secret"]);
    sendText(c, "a", ["no-token"]);
    await waitRefusals([a, b, c], 6);
    expect(a.received).toEqual([]);
    expect(b.received).toEqual([]);
    for (const node of [a, b, c]) {
      expect(node.transport.stats().openConnections).toBe(0);
      expect(new Set(node.logged).size).toBe(node.logged.length);
    }
    expect(b.logged).toContain(
      "peer transport: refused peer a: the handshake proof does not match this node's cluster token",
    );
    expect(a.logged.some((line) => line.includes("refused this node: the handshake proof does not match"))).toBe(true);
  });

  test("a wrong cluster id is refused", async () => {
    const a = startNode("a");
    const b = startNode("b", { clusterId: "other-cluster" });
    introduce([a, b]);
    sendText(a, "b", ["x"]);
    sendText(b, "a", ["y"]);
    await waitRefusals([a, b], 3);
    expect([...a.received, ...b.received]).toEqual([]);
    expect(b.logged.join("\n")).toContain('refused peer a: cluster id "test-cluster", this node is in "other-cluster"');
  });

  test("another protocol version, or a dial meant for another node, is refused with the reason", async () => {
    const a = startNode("a");
    const version = await RawPeer.connect(a.transport.address);
    const nonce = new Uint8Array(32);
    version.sendHandshake({ kind: "hello", version: 99, clusterId: "test-cluster", from: "z", to: "a", nonce });
    expect(await version.nextHandshake(0)).toEqual({
      kind: "refuse",
      duplicate: false,
      reason: "protocol version 99; this node speaks 1",
    });
    await version.waitClosed("the node to close the connection of another version");
    const misdialed = await RawPeer.connect(a.transport.address);
    misdialed.sendHandshake({ kind: "hello", version: 1, clusterId: "test-cluster", from: "z", to: "q", nonce });
    expect(await misdialed.nextHandshake(0)).toMatchObject({
      kind: "refuse",
      reason: 'dialed node "q", but this is "a"',
    });
  });

  test("a recorded handshake replayed on a new connection is refused", async () => {
    const a = startNode("a", { token: "tok" });
    const genuine = await RawPeer.connect(a.transport.address);
    await genuine.authenticate("z", "a", "tok");
    await waitFor(() => a.transport.stats().openConnections === 1, { what: "a to accept the genuine peer" });
    genuine.close();
    const replay = await RawPeer.connect(a.transport.address);
    const [hello, proof] = genuine.sentFrames;
    replay.writeRaw(hello!);
    await replay.nextHandshake(0);
    replay.writeRaw(proof!);
    expect(await replay.nextHandshake(1)).toMatchObject({ kind: "refuse", duplicate: false });
    await replay.waitClosed("the node to close the replayed connection");
    expect(a.transport.stats().refused).toBe(1);
  });
});

describe("misbehaving peers", () => {
  test("handshakes in progress are bounded: more connections are cut off until places free up", async () => {
    const [a, b] = [startNode("a", { handshakesMax: 2 }), startNode("b")];
    const silent = [await RawPeer.connect(a.transport.address), await RawPeer.connect(a.transport.address)];
    const third = await RawPeer.connect(a.transport.address);
    await third.waitClosed("the node to cut off a third connection in its handshake");
    expect(silent.map((peer) => peer.closed)).toEqual([false, false]);
    for (const peer of silent) peer.close();
    introduce([a, b]);
    sendText(b, "a", ["let-in"]);
    await waitReceived(a, 1);
  });

  test("a message handler that throws closes that connection; it is made again and traffic goes on", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    let calls = 0;
    b.transport.onMessage((from, payload) => {
      calls++;
      if (calls === 1) throw new Error("handler failure");
      b.received.push(`${from}:${payload.byteLength}`);
    });
    introduce([a, b]);
    a.transport.send("b", new Uint8Array(1));
    await waitFor(() => a.transport.stats().peers.b!.reconnects >= 1, { what: "a to reconnect to b" });
    a.transport.send("b", new Uint8Array(2));
    await waitReceived(b, 1);
    expect(b.received).toEqual(["a:2"]);
    expect(b.logged).toEqual(["peer transport: closing a connection to a: Error: handler failure"]);
  });
});

describe("bad frames", () => {
  test("a garbage byte stream closes its connection and the node serves others", async () => {
    const [a, b] = [startNode("a"), startNode("b")];
    const garbage = await RawPeer.connect(a.transport.address);
    garbage.writeRaw(bytes("GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
    await garbage.waitClosed("the node to close a connection that sent garbage");
    expect(a.transport.stats().corruptFrames).toBe(1);
    introduce([a, b]);
    sendText(b, "a", ["still-serving"]);
    await waitReceived(a, 1);
  });

  test("an oversized frame closes its connection, before and after the handshake", async () => {
    const [a, b] = [startNode("a", { payloadBytesMax: 4_096 }), startNode("b")];
    // Before the handshake, a frame header announcing more than a handshake message is enough.
    const early = await RawPeer.connect(a.transport.address);
    early.writeRaw(encodeFrame(new Uint8Array(2_000)).subarray(0, FRAME_HEADER_BYTES));
    await early.waitClosed("the node to close a connection whose first frame is too large");
    // After it, a payload over payloadBytesMax.
    const late = await RawPeer.connect(a.transport.address);
    await late.authenticate("z", "a");
    late.writeRaw(encodeFrame(bytes("small")));
    late.writeRaw(encodeFrame(new Uint8Array(4_097)));
    await late.waitClosed("the node to close a connection that sent an oversized payload");
    expect(a.received).toEqual(["z:small"]);
    expect(a.transport.stats().oversizedFrames).toBe(2);
    // A corrupt frame after the handshake closes the connection too.
    const corrupt = await RawPeer.connect(a.transport.address);
    await corrupt.authenticate("y", "a");
    const frame = encodeFrame(bytes("flipped"));
    frame[FRAME_HEADER_BYTES] = frame[FRAME_HEADER_BYTES]! ^ 0xff;
    corrupt.writeRaw(frame);
    await corrupt.waitClosed("the node to close a connection that sent a corrupt frame");
    expect(a.transport.stats().corruptFrames).toBe(1);
    introduce([a, b]);
    sendText(b, "a", ["still-serving"]);
    await waitReceived(a, 2);
  });
});

test("connected(): undefined for a node it does not know, true once linked, false once the peer is gone", async () => {
  const a = startNode("a");
  const b = startNode("b");
  expect(a.transport.connected("b")).toBeUndefined();
  introduce([a, b]);
  await waitConnected(a, "b");
  expect(a.transport.connected("b")).toBe(true);
  b.transport.close();
  await waitFor(() => a.transport.connected("b") === false, { what: "a to see its link to b go down" });
  expect(a.transport.stats().peers.b?.connected).toBe(false);
});

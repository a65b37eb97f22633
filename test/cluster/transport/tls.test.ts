import { afterAll, afterEach, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import type { PeerTls } from "../../../src/cluster/transport/options.ts";
import { makeTestCerts, type TestCerts } from "../../security/certs.ts";
import { closeAll, introduce, sendText, startNode, waitReceived } from "./nodes.ts";

/** Peer connections over TLS (the server's certificate), with and without mutual verification. */
let certs: TestCerts;
beforeAll(() => {
  certs = makeTestCerts();
});
afterAll(() => certs.cleanup());
afterEach(closeAll);

const identity = (pair: { cert: string; key: string }, ca?: string): PeerTls => ({
  cert: readFileSync(pair.cert),
  key: readFileSync(pair.key),
  ...(ca ? { ca: readFileSync(ca) } : {}),
});

test("with a CA both sides verify each other, and payloads flow both ways", async () => {
  const a = startNode("a", { tls: identity(certs.server, certs.ca), token: "t" });
  const b = startNode("b", { tls: identity(certs.server, certs.ca), token: "t" });
  introduce([a, b]);
  sendText(a, "b", ["one", "two"]);
  sendText(b, "a", ["three"]);
  await waitReceived(b, 2);
  await waitReceived(a, 1);
  expect(b.received).toEqual(["a:one", "a:two"]);
  expect(a.received).toEqual(["b:three"]);
});

test("without a CA the link is encrypted; the token still decides who may talk", async () => {
  const a = startNode("a", { tls: identity(certs.server), token: "t" });
  const b = startNode("b", { tls: identity(certs.untrusted), token: "t" });
  introduce([a, b]);
  sendText(a, "b", ["hello"]);
  await waitReceived(b, 1);
  expect(b.received).toEqual(["a:hello"]);
});

test("a peer whose certificate another CA signed, or a plaintext one, never gets a payload through", async () => {
  const a = startNode("a", { tls: identity(certs.server, certs.ca), token: "t" });
  const stranger = startNode("s", { tls: identity(certs.untrusted, certs.otherCa), token: "t" });
  const plain = startNode("p", { token: "t" });
  const friend = startNode("f", { tls: identity(certs.server, certs.ca), token: "t" });
  // The strangers dial first and keep trying; the friend's payload arriving is the point by which
  // theirs would have arrived too.
  for (const node of [stranger, plain]) {
    node.transport.addPeer("a", a.transport.address);
    sendText(node, "a", ["let me in"]);
  }
  friend.transport.addPeer("a", a.transport.address);
  a.transport.addPeer("f", friend.transport.address);
  sendText(friend, "a", ["hello"]);
  await waitReceived(a, 1);
  for (const node of [stranger, plain]) sendText(node, "a", ["let me in"]);
  sendText(friend, "a", ["again"]);
  await waitReceived(a, 2);
  expect(a.received).toEqual(["f:hello", "f:again"]);
  expect(a.transport.stats().peers.s?.connected ?? false).toBe(false);
  expect(a.transport.stats().peers.p?.connected ?? false).toBe(false);
});

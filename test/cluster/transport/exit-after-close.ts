/**
 * Run by close.test.ts as a process of its own. Three transports exchange payloads; then each kind
 * of thing a transport keeps open is left pending for a minute: a reconnection timer (a peer whose
 * port nobody listens on), a dial stuck in its handshake (a peer that accepts and never answers), a
 * handshake in progress on an accepted connection (a client that never speaks), a delayed payload
 * of the fault wrapper. Then everything is closed, and the process must exit by itself at once. The
 * silent peer and client are unref'd: only what the transports hold can keep the process alive.
 */
import { createPeerTransport, withFaults } from "../../../src/cluster/transport/index.ts";
import { mulberry32 } from "../../../src/random.ts";

const MINUTE_MS = 60_000;
const nodes = ["a", "b", "c"].map((nodeId) =>
  createPeerTransport({
    clusterId: "exit-test",
    nodeId,
    host: "127.0.0.1",
    port: 0,
    backoffInitialMs: MINUTE_MS,
    backoffMaxMs: MINUTE_MS,
    handshakeTimeoutMs: MINUTE_MS,
  }),
);
const [a, b, c] = nodes as [(typeof nodes)[0], (typeof nodes)[0], (typeof nodes)[0]];
let received = 0;
a.onMessage(() => received++);
b.onMessage(() => received++);
for (const node of nodes) for (const peer of nodes) if (peer !== node) node.addPeer(peer.nodeId, peer.address);

const portOf = (address: string) => Number(address.split(":")[1]);
const closedPort = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
a.addPeer("gone", `127.0.0.1:${closedPort.port}`);
closedPort.stop(true);
const mute = Bun.listen({ hostname: "127.0.0.1", port: 0, socket: { data() {} } });
mute.unref();
a.addPeer("mute", `127.0.0.1:${mute.port}`);
const silent = await Bun.connect({ hostname: "127.0.0.1", port: portOf(b.address), socket: { data() {} } });
silent.unref();
const faulty = withFaults(c, mulberry32(1));
faulty.setDelay(MINUTE_MS);
faulty.send("a", new Uint8Array([1]));

for (let i = 0; i < 100; i++) {
  a.send("b", new Uint8Array([i]));
  b.send("a", new Uint8Array([i]));
}
const deadlineMs = performance.now() + 10_000;
while (received < 200 && performance.now() < deadlineMs) await Bun.sleep(5);
if (received < 200) throw new Error(`only ${received} of 200 payloads arrived`);

a.close();
b.close();
faulty.close();
// Idempotent: a second close changes nothing.
faulty.close();
console.log("closed");

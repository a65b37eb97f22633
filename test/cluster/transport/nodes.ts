import { randomBytes } from "node:crypto";
import type { Socket } from "bun";
import { FrameStreamReader } from "../../../src/cluster/transport/frame-stream.ts";
import * as handshake from "../../../src/cluster/transport/handshake.ts";
import {
  createPeerTransport,
  type PeerTransport,
  type PeerTransportOptions,
} from "../../../src/cluster/transport/index.ts";
import { encodeFrame } from "../../../src/io/format/frame.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";

export const CLUSTER = "test-cluster";

/** A transport on a free loopback port, with what it received and logged. */
export interface TestNode {
  readonly id: string;
  readonly transport: PeerTransport;
  /** "from:text" of every payload received, in order. */
  readonly received: string[];
  readonly logged: string[];
}

/** Short backoff and handshake times: the tests wait for reconnections, not for defaults made for a LAN. */
export const FAST = { backoffInitialMs: 10, backoffMaxMs: 100, handshakeTimeoutMs: 2_000 } as const;

const open: PeerTransport[] = [];

export function startNode(id: string, options: Partial<PeerTransportOptions> = {}): TestNode {
  const received: string[] = [];
  const logged: string[] = [];
  const transport = createPeerTransport({
    clusterId: CLUSTER,
    nodeId: id,
    host: "127.0.0.1",
    port: 0,
    log: (line) => logged.push(line),
    ...FAST,
    ...options,
  });
  transport.onMessage((from, payload) => received.push(`${from}:${text(payload)}`));
  open.push(transport);
  return { id, transport, received, logged };
}

/** Tells every node of every other's address. */
export function introduce(nodes: readonly TestNode[]): void {
  for (const node of nodes)
    for (const peer of nodes) if (peer !== node) node.transport.addPeer(peer.id, peer.transport.address);
}

/** Closes every transport the tests of a file started (for afterEach). */
export function closeAll(): void {
  for (const transport of open.splice(0)) transport.close();
}

export function waitConnected(from: TestNode, to: string): Promise<unknown> {
  return waitFor(() => from.transport.stats().peers[to]?.connected, {
    what: `${from.id} to be connected to ${to}`,
    detail: () => JSON.stringify(from.transport.stats()),
  });
}

export function waitReceived(node: TestNode, count: number): Promise<unknown> {
  return waitFor(() => node.received.length >= count, {
    what: `${node.id} to receive ${count} payloads`,
    detail: () => `received ${node.received.length}: ${node.received.slice(-5).join(", ")}`,
  });
}

export function sendText(from: TestNode, to: string, words: readonly string[]): void {
  for (const word of words) from.transport.send(to, bytes(word));
}

/**
 * A peer written by hand over a raw socket, to send what a transport never would: garbage, replays,
 * oversized frames. It records every frame it sends and every handshake message it receives.
 */
export class RawPeer {
  readonly handshakes: handshake.HandshakeMessage[] = [];
  readonly sentFrames: Uint8Array[] = [];
  closed = false;
  private readonly reader = new FrameStreamReader();

  private constructor(private readonly socket: Socket<undefined>) {}

  static async connect(address: string): Promise<RawPeer> {
    const [host, port] = address.split(":") as [string, string];
    let peer: RawPeer | undefined;
    const socket = await Bun.connect({
      hostname: host,
      port: Number(port),
      socket: {
        data: (_socket, chunk) => peer?.receive(chunk),
        close: () => {
          if (peer) peer.closed = true;
        },
      },
    });
    peer = new RawPeer(socket);
    return peer;
  }

  writeRaw(data: Uint8Array): void {
    this.sentFrames.push(data);
    this.socket.write(data);
  }

  sendHandshake(message: handshake.HandshakeMessage): void {
    this.writeRaw(encodeFrame(handshake.encodeHandshake(message)));
  }

  /** Waits for the next handshake message after the `seen` first ones. */
  async nextHandshake(seen: number): Promise<handshake.HandshakeMessage> {
    await waitFor(() => this.handshakes.length > seen || this.closed, { what: "a handshake message from the node" });
    const message = this.handshakes[seen];
    if (!message) throw new Error("the node closed the connection without answering");
    return message;
  }

  /** Completes the handshake as `from` with `token`, as a transport would. */
  async authenticate(from: string, to: string, token = ""): Promise<void> {
    const nonce = randomBytes(handshake.NONCE_BYTES);
    this.sendHandshake({ kind: "hello", version: handshake.PROTOCOL_VERSION, clusterId: CLUSTER, from, to, nonce });
    const welcome = await this.nextHandshake(0);
    if (welcome.kind !== "welcome") throw new Error(`expected a welcome, got ${JSON.stringify(welcome)}`);
    const input = {
      token,
      clusterId: CLUSTER,
      dialerId: from,
      acceptorId: to,
      dialerNonce: nonce,
      acceptorNonce: welcome.nonce,
    };
    this.sendHandshake({ kind: "proof", proof: handshake.proveHandshake("dialer", input) });
    const accept = await this.nextHandshake(1);
    if (accept.kind !== "accept") throw new Error(`expected accept, got ${JSON.stringify(accept)}`);
  }

  waitClosed(what: string): Promise<unknown> {
    return waitFor(() => this.closed, { what });
  }

  close(): void {
    this.socket.terminate();
  }

  private receive(chunk: Uint8Array): void {
    this.reader.push(chunk);
    for (let i = 0; i < 100; i++) {
      const read = this.reader.next(1 << 20);
      if (read.kind !== "frame") return;
      // After the handshake, frames are payloads: this peer keeps none of them.
      if (this.handshakes.at(-1)?.kind !== "accept")
        this.handshakes.push(handshake.decodeHandshake(read.payload) as handshake.HandshakeMessage);
    }
  }
}

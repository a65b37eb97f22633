import { randomBytes } from "node:crypto";
import type { Socket } from "bun";
import { FormatError } from "../../io/format/bytes.ts";
import { encodeFrame, FRAME_HEADER_BYTES } from "../../io/format/frame.ts";
import { ID_PATTERN } from "../gossip/node-state.ts";
import { FrameStreamReader } from "./frame-stream.ts";
import {
  checkProof,
  decodeHandshake,
  encodeHandshake,
  HANDSHAKE_FRAME_BYTES_MAX,
  type HandshakeMessage,
  NONCE_BYTES,
  PROTOCOL_VERSION,
  type ProofInput,
  proveHandshake,
} from "./handshake.ts";

/** What a connection needs from the transport that owns it, and tells it. */
export interface ConnectionHost {
  readonly clusterId: string;
  readonly nodeId: string;
  readonly token: string;
  readonly handshakeTimeoutMs: number;
  readonly payloadBytesMax: number;
  /** Why a peer that says it is `peerId` may not connect, or undefined when it may. */
  admit(peerId: string): string | undefined;
  /** Whether this authenticated, not yet accepted connection would duplicate the one to keep. */
  isDuplicate(connection: Connection): boolean;
  established(connection: Connection): void;
  received(connection: Connection, payload: Uint8Array): void;
  drained(connection: Connection): void;
  /** Called once, whatever closed the connection. */
  closed(connection: Connection): void;
  /** The socket is gone too (or never came): the connection holds nothing any more. */
  released(connection: Connection): void;
  /** A handshake failed: `line` is for the log, once per `peerKey` and line. */
  refused(peerKey: string, line: string, byPeer: boolean): void;
  badFrame(kind: "corrupt" | "oversized"): void;
}

/** A peer socket: its data is the connection, once there is one (an accepted socket gets it on open). */
export type PeerSocket = Socket<Connection | undefined>;

export type Role = "dialer" | "acceptor";
type Phase = "connecting" | "hello" | "proof" | "open" | "closed";

/**
 * One TCP connection to a peer: the handshake (handshake.ts), then frames both ways. The dialer
 * knows whom it dials; the acceptor learns the peer's id from its hello, and trusts it only once the
 * proof holds. Nothing here decides which of two connections to a peer is kept, or queues payloads:
 * the transport does.
 */
export class Connection {
  /** The peer: known from the start for a dialer, from the hello for an acceptor. */
  peerId: string | undefined;
  /** A partial write left bytes over: the transport writes again on drain, not before. */
  awaitingDrain = false;
  private socket: PeerSocket | undefined;
  private phase: Phase = "connecting";
  private readonly reader = new FrameStreamReader();
  private readonly ownNonce = randomBytes(NONCE_BYTES);
  private peerNonce: Uint8Array | undefined;
  private timer: ReturnType<typeof setTimeout> | undefined;
  private released = false;

  constructor(
    private readonly host: ConnectionHost,
    readonly role: Role,
    peerId?: string,
  ) {
    this.peerId = peerId;
    this.timer = setTimeout(() => this.close("handshake timed out"), host.handshakeTimeoutMs);
  }

  get isOpen(): boolean {
    return this.phase === "open";
  }

  get isClosed(): boolean {
    return this.phase === "closed";
  }

  /** The node that dialed this connection (which of two duplicates is kept depends on it). */
  get dialerId(): string | undefined {
    return this.role === "dialer" ? this.host.nodeId : this.peerId;
  }

  /** The socket is connected: a dialer speaks first. */
  attach(socket: PeerSocket): void {
    if (this.phase === "closed") {
      // Closed (timed out, or the transport closed) while the connection was being made.
      socket.terminate();
      return;
    }
    this.socket = socket;
    // The transport batches writes itself; Nagle's delay would only add latency to each batch.
    socket.setNoDelay(true);
    // A peer whose host vanished without a FIN is noticed even when nothing is being sent to it.
    socket.setKeepAlive(true, 10_000);
    this.phase = "hello";
    if (this.role === "dialer") {
      this.sendHandshake({
        kind: "hello",
        version: PROTOCOL_VERSION,
        clusterId: this.host.clusterId,
        from: this.host.nodeId,
        to: this.peerId!,
        nonce: this.ownNonce,
      });
    }
  }

  receive(chunk: Uint8Array): void {
    if (this.phase === "closed") return;
    this.reader.push(chunk);
    // Each frame takes at least a header's worth of the buffered bytes: a bound on this loop.
    const framesMax = Math.floor(this.reader.buffered / FRAME_HEADER_BYTES) + 1;
    for (let i = 0; i < framesMax && !this.isClosed; i++) {
      const limit = this.phase === "open" ? this.host.payloadBytesMax : HANDSHAKE_FRAME_BYTES_MAX;
      const read = this.reader.next(limit);
      if (read.kind === "more") return;
      if (read.kind === "corrupt" || read.kind === "oversized") {
        this.host.badFrame(read.kind);
        this.close(`${read.kind} frame: ${read.reason}`);
        return;
      }
      if (this.phase === "open") this.host.received(this, read.payload);
      else this.handshakeFrame(read.payload);
    }
  }

  /** Writes as much of `bytes` as the socket takes now; returns that count, or -1 when closed. */
  write(bytes: Uint8Array): number {
    if (this.phase !== "open" || !this.socket) return -1;
    const written = this.socket.write(bytes);
    if (written >= 0 && written < bytes.byteLength) this.awaitingDrain = true;
    return written;
  }

  drain(): void {
    this.awaitingDrain = false;
    if (this.phase === "open") this.host.drained(this);
  }

  /**
   * Closes the connection (idempotent): ends the socket, so that a refusal written just before
   * reaches the peer, and terminates it if the peer has not closed its side within a second.
   * `reason` is for debugging, never sent.
   */
  close(_reason?: string): void {
    if (this.phase === "closed") return;
    this.phase = "closed";
    clearTimeout(this.timer);
    const socket = this.socket;
    if (socket) {
      socket.end();
      // unref: a lingering socket must not keep a process alive that has nothing else to do.
      this.timer = setTimeout(() => socket.terminate(), LINGER_MS);
      this.timer.unref();
    }
    this.host.closed(this);
  }

  /** Closes at once, without waiting for the peer: the transport is shutting down. */
  terminate(): void {
    this.close("the transport closed");
    this.socket?.terminate();
  }

  /** The socket closed, or could not be made. */
  socketClosed(): void {
    this.close("the socket closed");
    clearTimeout(this.timer);
    if (this.released) return;
    this.released = true;
    this.host.released(this);
  }

  private handshakeFrame(payload: Uint8Array): void {
    let message: ReturnType<typeof decodeHandshake>;
    try {
      message = decodeHandshake(payload);
    } catch (error) {
      if (!(error instanceof FormatError)) throw error;
      this.host.badFrame("corrupt");
      this.close(`malformed handshake: ${error.message}`);
      return;
    }
    if (message.kind === "refuse") {
      const who = this.peerId ?? this.remoteAddress();
      if (!message.duplicate) this.host.refused(who, `peer ${who} refused this node: ${message.reason}`, true);
      this.close(`refused: ${message.reason}`);
      return;
    }
    if (message.kind === "version") {
      this.refuse(`protocol version ${message.version}; this node speaks ${PROTOCOL_VERSION}`);
      return;
    }
    const expected =
      this.role === "acceptor"
        ? this.phase === "hello"
          ? "hello"
          : "proof"
        : this.phase === "hello"
          ? "welcome"
          : "accept";
    if (message.kind !== expected) {
      this.refuse(`sent a ${message.kind} where a ${expected} was due`);
      return;
    }
    this.step(message);
  }

  private step(message: HandshakeMessage): void {
    switch (message.kind) {
      case "hello": {
        const refusal = this.checkHello(message);
        if (message.from && ID_PATTERN.test(message.from)) this.peerId = message.from;
        if (refusal) return this.refuse(refusal);
        this.peerNonce = message.nonce;
        this.phase = "proof";
        return this.sendHandshake({
          kind: "welcome",
          version: PROTOCOL_VERSION,
          clusterId: this.host.clusterId,
          from: this.host.nodeId,
          nonce: this.ownNonce,
          proof: proveHandshake("acceptor", this.proofInput()),
        });
      }
      case "welcome": {
        if (message.clusterId !== this.host.clusterId)
          return this.refuse(clusterMismatch(message.clusterId, this.host));
        if (message.from !== this.peerId)
          return this.refuse(`node ${JSON.stringify(message.from)} answered at the address of ${this.peerId}`);
        this.peerNonce = message.nonce;
        if (!checkProof("acceptor", this.proofInput(), message.proof)) return this.refuse(WRONG_TOKEN);
        this.phase = "proof";
        return this.sendHandshake({ kind: "proof", proof: proveHandshake("dialer", this.proofInput()) });
      }
      case "proof": {
        if (!checkProof("dialer", this.proofInput(), message.proof)) return this.refuse(WRONG_TOKEN);
        if (this.host.isDuplicate(this)) {
          this.sendHandshake({ kind: "refuse", reason: "duplicate connection", duplicate: true });
          return this.close("duplicate connection");
        }
        this.sendHandshake({ kind: "accept" });
        return this.open();
      }
      case "accept":
        return this.open();
      case "refuse":
        return;
    }
  }

  private checkHello(hello: Extract<HandshakeMessage, { kind: "hello" }>): string | undefined {
    if (hello.clusterId !== this.host.clusterId) return clusterMismatch(hello.clusterId, this.host);
    if (hello.to !== this.host.nodeId)
      return `dialed node ${JSON.stringify(hello.to)}, but this is ${JSON.stringify(this.host.nodeId)}`;
    if (!ID_PATTERN.test(hello.from)) return `invalid node id ${JSON.stringify(hello.from)}`;
    if (hello.from === this.host.nodeId) return `claims this node's own id ${JSON.stringify(hello.from)}`;
    return this.host.admit(hello.from);
  }

  private open(): void {
    clearTimeout(this.timer);
    this.phase = "open";
    this.host.established(this);
  }

  private proofInput(): ProofInput {
    const dialing = this.role === "dialer";
    return {
      token: this.host.token,
      clusterId: this.host.clusterId,
      dialerId: dialing ? this.host.nodeId : this.peerId!,
      acceptorId: dialing ? this.peerId! : this.host.nodeId,
      dialerNonce: dialing ? this.ownNonce : this.peerNonce!,
      acceptorNonce: dialing ? this.peerNonce! : this.ownNonce,
    };
  }

  /** Tells the peer why (its log shows it), logs it here once, and closes. */
  private refuse(reason: string): void {
    const who = this.peerId ?? this.remoteAddress();
    this.host.refused(who, `refused peer ${who}: ${reason}`, false);
    this.sendHandshake({ kind: "refuse", reason, duplicate: false });
    this.close(reason);
  }

  private sendHandshake(message: HandshakeMessage): void {
    // A few hundred bytes into an empty socket buffer: written whole, or the connection is gone.
    this.socket?.write(encodeFrame(encodeHandshake(message)));
  }

  private remoteAddress(): string {
    return this.socket?.remoteAddress ?? "an unknown address";
  }
}

/** How long a closed connection waits for the peer to close its side before cutting it off. */
const LINGER_MS = 1_000;

const WRONG_TOKEN = "the handshake proof does not match this node's cluster token";

function clusterMismatch(clusterId: string, host: ConnectionHost): string {
  return `cluster id ${JSON.stringify(clusterId)}, this node is in ${JSON.stringify(host.clusterId)}`;
}

import type { SocketHandler, TCPSocketListener } from "bun";
import { formatAddress } from "../../address.ts";
import { assert, HomeKvError } from "../../errors.ts";
import { FRAME_HEADER_BYTES } from "../../io/format/frame.ts";
import { ID_PATTERN } from "../gossip/node-state.ts";
import { backoffDelayMs } from "./backoff.ts";
import { Connection, type ConnectionHost } from "./connection.ts";
import { type PeerTransportOptions, type ResolvedOptions, resolveOptions } from "./options.ts";
import { OutboundQueue } from "./outbound-queue.ts";
import { type PeerAddress, parsePeerAddress } from "./peer-address.ts";
import type { PeerStats, PeerTransport, TransportStats } from "./types.ts";

/**
 * The peer transport over Bun's TCP sockets.
 *
 * One connection per pair of nodes. Both nodes dial each other whenever they know the other's
 * address and have no connection to it, so a node that only learns of a peer from its first
 * connection still gets traffic both ways. When both dial at once, both keep the connection the
 * lower node id (string order) dialed: the acceptor of the other one refuses it at the end of its
 * handshake, before either side has sent a payload over it, and gives up its own dial when that is
 * the one to drop. A node that dials while the other still has a connection it dialed itself has
 * given up on that one (it may only look alive here): the new one replaces it.
 *
 * A lost connection, or a failed dial, is retried after backoffDelayMs (exponential, jittered,
 * capped) for as long as the peer has an address.
 *
 * Sending never waits: payloads go into the peer's bounded OutboundQueue, and one setImmediate per
 * turn frames everything queued to each peer into one socket write. A full queue drops new payloads
 * and counts them. That is safe for Raft, which the transport carries: Raft already bears messages
 * lost, late or duplicated (a dropped heartbeat or append is resent on the next one; a lost vote
 * means another election), so blocking or growing without bound would only hurt.
 */
export function createPeerTransport(options: PeerTransportOptions): PeerTransport {
  const resolved = resolveOptions(options);
  const transport = new TcpPeerTransport(resolved);
  for (const [id, address] of Object.entries(resolved.peers)) transport.addPeer(id, address);
  return transport;
}

interface Peer {
  readonly id: string;
  address: PeerAddress | undefined;
  readonly queue: OutboundQueue;
  /** The established connection payloads go over. */
  active: Connection | undefined;
  /** This node's dial in progress (connecting or in its handshake). */
  dialing: Connection | undefined;
  retryTimer: ReturnType<typeof setTimeout> | undefined;
  /** Dials that failed since the last established connection: the backoff step. */
  failures: number;
  everConnected: boolean;
  readonly counts: Omit<PeerStats, "address" | "connected" | "queuedPayloads" | "queuedBytes">;
}

/** Refusal lines remembered so as to log each once; past this, no more are logged (a bound). */
const LOGGED_REFUSALS_MAX = 1_024;

class TcpPeerTransport implements PeerTransport, ConnectionHost {
  readonly nodeId: string;
  readonly clusterId: string;
  readonly token: string;
  readonly handshakeTimeoutMs: number;
  readonly payloadBytesMax: number;
  readonly address: string;
  private readonly peers = new Map<string, Peer>();
  private readonly connections = new Set<Connection>();
  private readonly listener: TCPSocketListener<Connection | undefined>;
  private readonly handlers = this.socketHandlers();
  private readonly dirty = new Set<Peer>();
  private flushImmediate: ReturnType<typeof setImmediate> | undefined;
  private handler: ((from: string, payload: Uint8Array) => void) | undefined;
  private shutDown = false;
  private readonly loggedRefusals = new Set<string>();
  private readonly totals = {
    unknownPeerDrops: 0,
    refused: 0,
    refusedByPeers: 0,
    corruptFrames: 0,
    oversizedFrames: 0,
  };

  constructor(private readonly options: ResolvedOptions) {
    this.nodeId = options.nodeId;
    this.clusterId = options.clusterId;
    this.token = options.token;
    this.handshakeTimeoutMs = options.handshakeTimeoutMs;
    this.payloadBytesMax = options.payloadBytesMax;
    try {
      const { tls } = options;
      this.listener = Bun.listen<Connection | undefined>({
        hostname: options.host,
        port: options.port,
        socket: this.handlers,
        ...(tls
          ? {
              tls: {
                cert: tls.cert,
                key: tls.key,
                ...(tls.ca ? { ca: tls.ca, requestCert: true, rejectUnauthorized: true } : {}),
              },
            }
          : {}),
      });
    } catch (error) {
      throw new HomeKvError(
        "E_LISTEN",
        `cannot listen for peers on ${formatAddress(options.host, options.port)}: ${(error as Error).message}`,
      );
    }
    this.address = formatAddress(options.host, this.listener.port);
  }

  addPeer(nodeId: string, address: string): void {
    assert(ID_PATTERN.test(nodeId) && nodeId !== this.nodeId, () => `invalid peer id ${JSON.stringify(nodeId)}`);
    if (this.shutDown) return;
    const parsed = parsePeerAddress(address);
    const peer = this.peers.get(nodeId) ?? this.createPeer(nodeId);
    peer.address = parsed;
    this.dial(peer);
  }

  removePeer(nodeId: string): void {
    const peer = this.peers.get(nodeId);
    if (!peer) return;
    this.peers.delete(nodeId);
    this.dirty.delete(peer);
    clearTimeout(peer.retryTimer);
    peer.queue.clear();
    peer.active?.close("peer removed");
    peer.dialing?.close("peer removed");
  }

  send(to: string, payload: Uint8Array): void {
    assert(to !== this.nodeId, "a node does not send to itself");
    if (this.shutDown) return;
    const peer = this.peers.get(to);
    if (!peer) {
      this.totals.unknownPeerDrops++;
      return;
    }
    if (payload.byteLength > this.payloadBytesMax || !peer.queue.push(payload)) {
      peer.counts.drops++;
      return;
    }
    if (!peer.active) return;
    this.dirty.add(peer);
    this.flushImmediate ??= setImmediate(() => this.flushDirty());
  }

  onMessage(handler: (from: string, payload: Uint8Array) => void): void {
    this.handler = handler;
  }

  connected(nodeId: string): boolean | undefined {
    const peer = this.peers.get(nodeId);
    return peer === undefined ? undefined : peer.active !== undefined;
  }

  stats(): TransportStats {
    const peers: Record<string, PeerStats> = {};
    for (const peer of this.peers.values()) {
      peers[peer.id] = {
        address: peer.address?.text,
        connected: peer.active !== undefined,
        queuedPayloads: peer.queue.payloads,
        queuedBytes: peer.queue.bytes,
        ...peer.counts,
      };
    }
    let openConnections = 0;
    for (const connection of this.connections) if (connection.isOpen) openConnections++;
    return { peers, openConnections, ...this.totals };
  }

  close(): void {
    if (this.shutDown) return;
    this.shutDown = true;
    clearImmediate(this.flushImmediate);
    this.listener.stop(true);
    for (const peer of this.peers.values()) {
      clearTimeout(peer.retryTimer);
      peer.queue.clear();
    }
    for (const connection of this.connections) connection.terminate();
  }

  // ConnectionHost: what connections tell the transport.

  admit(peerId: string): string | undefined {
    if (this.shutDown) return "the node is shutting down";
    if (!this.peers.has(peerId) && this.peers.size >= this.options.peersMax)
      return `this node already tracks ${this.options.peersMax} peers`;
    return undefined;
  }

  isDuplicate(connection: Connection): boolean {
    const peer = this.peers.get(connection.peerId!);
    const rival = peer?.active ?? peer?.dialing;
    return rival !== undefined && !this.prefers(connection, rival);
  }

  established(connection: Connection): void {
    const id = connection.peerId!;
    // A dialer's peer may have been removed while it dialed; an acceptor's was admitted just now.
    const peer = connection.role === "dialer" ? this.peers.get(id) : (this.peers.get(id) ?? this.createPeer(id));
    if (!peer || this.shutDown) return connection.close("no longer wanted");
    const dial = peer.dialing;
    peer.dialing = undefined;
    // An accepted connection that was not refused as a duplicate beats this node's own dial.
    if (dial !== connection) dial?.close("duplicate connection");
    const current = peer.active;
    if (current && !this.prefers(connection, current)) return connection.close("duplicate connection");
    peer.active = connection;
    // The old connection's unwritten batch cannot continue on this one; closing it after the switch
    // keeps closed() from treating it as the peer's loss.
    peer.counts.drops += peer.queue.dropBatch();
    current?.close("duplicate connection");
    clearTimeout(peer.retryTimer);
    peer.retryTimer = undefined;
    peer.failures = 0;
    if (peer.everConnected && !current) peer.counts.reconnects++;
    peer.everConnected = true;
    this.flush(peer);
  }

  received(connection: Connection, payload: Uint8Array): void {
    const peer = this.peers.get(connection.peerId!);
    if (peer) {
      peer.counts.payloadsReceived++;
      peer.counts.bytesReceived += FRAME_HEADER_BYTES + payload.byteLength;
    }
    this.handler?.(connection.peerId!, payload);
  }

  drained(connection: Connection): void {
    const peer = this.peers.get(connection.peerId!);
    if (peer?.active === connection) this.flush(peer);
  }

  closed(connection: Connection): void {
    const peer = connection.peerId === undefined ? undefined : this.peers.get(connection.peerId);
    if (!peer) return;
    if (peer.dialing === connection) {
      peer.dialing = undefined;
      peer.failures++;
    } else if (peer.active === connection) {
      peer.active = undefined;
      peer.counts.drops += peer.queue.dropBatch();
    } else return;
    this.scheduleRetry(peer);
  }

  released(connection: Connection): void {
    this.connections.delete(connection);
  }

  refused(peerKey: string, line: string, byPeer: boolean): void {
    if (byPeer) this.totals.refusedByPeers++;
    else this.totals.refused++;
    const key = `${peerKey}\n${line}`;
    if (this.loggedRefusals.has(key) || this.loggedRefusals.size >= LOGGED_REFUSALS_MAX) return;
    this.loggedRefusals.add(key);
    this.options.log(`peer transport: ${line}`);
  }

  badFrame(kind: "corrupt" | "oversized"): void {
    if (kind === "corrupt") this.totals.corruptFrames++;
    else this.totals.oversizedFrames++;
  }

  // Internals.

  private createPeer(id: string): Peer {
    const peer: Peer = {
      id,
      address: undefined,
      queue: new OutboundQueue(this.options.queuePayloadsMax, this.options.queueBytesMax),
      active: undefined,
      dialing: undefined,
      retryTimer: undefined,
      failures: 0,
      everConnected: false,
      counts: {
        bytesSent: 0,
        payloadsSent: 0,
        bytesReceived: 0,
        payloadsReceived: 0,
        drops: 0,
        writes: 0,
        reconnects: 0,
      },
    };
    this.peers.set(id, peer);
    return peer;
  }

  /** Whether `incoming` should replace `current`, both (being) established to the same peer. */
  private prefers(incoming: Connection, current: Connection): boolean {
    if (incoming.dialerId === current.dialerId) return true;
    // Different dialers: keep the one the lower node id dialed.
    const peerId = incoming.peerId!;
    return incoming.dialerId === this.nodeId ? this.nodeId < peerId : peerId < this.nodeId;
  }

  private dial(peer: Peer): void {
    if (this.shutDown || !peer.address || peer.active || peer.dialing || peer.retryTimer) return;
    const connection = new Connection(this, "dialer", peer.id);
    peer.dialing = connection;
    this.connections.add(connection);
    const { tls } = this.options;
    Bun.connect<Connection | undefined>({
      hostname: peer.address.host,
      port: peer.address.port,
      data: connection,
      socket: this.handlers,
      // The dialer shows its certificate too: an acceptor with a CA requires one.
      ...(tls
        ? { tls: { cert: tls.cert, key: tls.key, ...(tls.ca ? { ca: tls.ca } : { rejectUnauthorized: false }) } }
        : {}),
    }).catch(() => connection.socketClosed());
  }

  private scheduleRetry(peer: Peer): void {
    if (this.shutDown || !peer.address || peer.active || peer.dialing || peer.retryTimer) return;
    peer.retryTimer = setTimeout(
      () => {
        peer.retryTimer = undefined;
        this.dial(peer);
      },
      backoffDelayMs(peer.failures, this.options.random, this.options),
    );
  }

  private acceptedHandshakes(): number {
    let count = 0;
    for (const connection of this.connections)
      if (connection.role === "acceptor" && !connection.isOpen && !connection.isClosed) count++;
    return count;
  }

  private flushDirty(): void {
    this.flushImmediate = undefined;
    for (const peer of this.dirty) this.flush(peer);
    this.dirty.clear();
  }

  /**
   * Writes what waits for the peer: at most the rest of a batch a partial write left, then one new
   * batch of everything queued. A partial write stops it until the socket drains.
   */
  private flush(peer: Peer): void {
    const connection = peer.active;
    for (let i = 0; i < 2 && connection && !connection.awaitingDrain; i++) {
      const bytes = peer.queue.nextWrite();
      if (!bytes) return;
      const written = connection.write(bytes);
      peer.counts.writes++;
      // -1: the socket is closing; closed() is about to drop the batch.
      if (written <= 0) return;
      peer.counts.bytesSent += written;
      peer.counts.payloadsSent += peer.queue.wrote(written);
    }
  }

  private socketHandlers(): SocketHandler<Connection | undefined> {
    return {
      open: (socket) => {
        if (!socket.data) {
          if (this.acceptedHandshakes() >= this.options.handshakesMax) return socket.terminate();
          socket.data = new Connection(this, "acceptor");
          this.connections.add(socket.data);
        }
        socket.data.attach(socket);
      },
      data: (socket, chunk) => socket.data?.receive(chunk),
      drain: (socket) => socket.data?.drain(),
      close: (socket) => socket.data?.socketClosed(),
      connectError: (socket) => socket.data?.socketClosed(),
      // A handler threw (the onMessage handler, most likely): the connection it ran for is closed.
      error: (socket, error) => {
        this.options.log(`peer transport: closing a connection to ${socket.data?.peerId ?? "a peer"}: ${error}`);
        socket.data?.close("a handler threw");
      },
    };
  }
}

/**
 * Opaque payloads between the nodes of a cluster, over one connection per pair of nodes. What a
 * payload means (a Raft message, with its group id) is the caller's business.
 */
export interface PeerTransport {
  readonly nodeId: string;
  /** "host:port" where this node accepts peers (with the port the OS picked when asked for 0). */
  readonly address: string;
  /** Adds a peer, or gives a known one a new address; the transport connects to it and stays connected. */
  addPeer(nodeId: string, address: string): void;
  /** Forgets a peer: its connection is closed and its queue dropped. It may still connect in later. */
  removePeer(nodeId: string): void;
  /**
   * Queues a payload for a peer and returns at once. Never throws for a peer that is down, unknown
   * or slow: the payload is dropped and counted instead. Every payload queued to a peer in one
   * event-loop turn leaves in one socket write. The payload is read at that write, not before: do
   * not change it after sending.
   */
  send(to: string, payload: Uint8Array): void;
  /**
   * Sets the one function that gets every payload received, in the order of its connection.
   * Payloads that arrive before it is set are counted and not delivered.
   */
  onMessage(handler: (from: string, payload: Uint8Array) => void): void;
  /**
   * Whether the connection to a peer is up now; undefined for a node the transport does not know
   * (neither added nor connected in). What `stats().peers[nodeId].connected` says, without the stats.
   */
  connected(nodeId: string): boolean | undefined;
  stats(): TransportStats;
  /** Closes every connection and the listener, drops every queue, stops every timer. Idempotent. */
  close(): void;
}

export interface PeerStats {
  /** Undefined for a peer known only because it connected in. */
  address: string | undefined;
  connected: boolean;
  /** Bytes of payload frames on the wire (headers included), and payloads, wholly written or read. */
  bytesSent: number;
  payloadsSent: number;
  bytesReceived: number;
  payloadsReceived: number;
  /** Payloads dropped: queue full, over the size limit, or lost with a connection mid-write. */
  drops: number;
  /** Payloads and their bytes waiting for the peer now. */
  queuedPayloads: number;
  queuedBytes: number;
  /** Socket writes of payloads (many payloads of one turn make one write). */
  writes: number;
  /** Connections established after the first one was lost. */
  reconnects: number;
}

export interface TransportStats {
  peers: Record<string, PeerStats>;
  /** Connections past their handshake and not closed: one per connected peer, but for a moment. */
  openConnections: number;
  /** Payloads sent to a node that is neither added nor connected. */
  unknownPeerDrops: number;
  /** Handshakes this node refused, and handshakes peers refused. */
  refused: number;
  refusedByPeers: number;
  /** Connections closed because a frame failed its checksum (or would not parse), or was over the limit. */
  corruptFrames: number;
  oversizedFrames: number;
}

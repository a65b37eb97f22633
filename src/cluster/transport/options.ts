import { assert } from "../../errors.ts";
import { ID_PATTERN } from "../gossip/node-state.ts";

export interface PeerTransportOptions {
  /** Peers of any other cluster are refused in the handshake. */
  clusterId: string;
  nodeId: string;
  /** Where to accept peers: a host, and a port (0: any free one; `address` then tells which). */
  host: string;
  port: number;
  /** Peers known at the start, node id → "host:port" of its peer port. More come with addPeer. */
  peers?: Readonly<Record<string, string>>;
  /**
   * The shared cluster token. Both sides prove they hold it without sending it; a node without one
   * only talks to nodes without one (the proof is then keyed by the empty string).
   */
  token?: string;
  /**
   * TLS for every peer connection, with this node's certificate (the server's own). With `ca`, both
   * sides present certificates and verify the other's against it (mutual TLS); without, the link is
   * encrypted and the token handshake still authenticates, but a man in the middle who can read
   * the traffic is not excluded. A TLS node and a plaintext one do not talk.
   */
  tls?: PeerTls;
  /** Gets a line for each refused handshake, once per peer and reason. */
  log?: (line: string) => void;
  /** [0, 1) uniform: the jitter of reconnection delays. */
  random?: () => number;

  /** The first reconnection delay; each failed attempt doubles it, up to backoffMaxMs. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  /** A connection that has not finished its handshake this long after the dial or accept is closed. */
  handshakeTimeoutMs?: number;
  /** The largest payload sent or received; a larger one is dropped when sent, and closes the connection when received. */
  payloadBytesMax?: number;
  /** Payloads, and their bytes on the wire, waiting for one peer at most; more are dropped. */
  queuePayloadsMax?: number;
  queueBytesMax?: number;
  /**
   * Once this many peers are tracked, a node that was not added is refused when it connects in (a
   * bound against many node ids). addPeer is not limited: the caller's configuration is.
   */
  peersMax?: number;
  /** Accepted connections still in their handshake at most; more are cut off as they come. */
  handshakesMax?: number;
}

export interface PeerTls {
  cert: Buffer;
  key: Buffer;
  ca?: Buffer;
}

export type ResolvedOptions = Required<Omit<PeerTransportOptions, "token" | "log" | "tls">> & {
  token: string;
  tls: PeerTls | undefined;
  log: (line: string) => void;
};

/**
 * Defaults, and why:
 * - backoff 50 ms doubling to 2 s: a restarted peer is back within tens of milliseconds on a LAN,
 *   and a dead one costs a connection attempt every ~2 s per node, nothing.
 * - handshake 3 s: a paused (SIGSTOP) peer's kernel still accepts connections; one that does not
 *   answer within seconds is retried instead of holding the dial forever.
 * - 16 MiB payloads: a Raft append of a full batch of large values fits; snapshots do not travel as
 *   one payload but in their own stream.
 * - 10,000 payloads or 32 MiB queued per peer: several seconds of heartbeats and appends to a peer
 *   that is down or paused; beyond that Raft resends from its own log anyway.
 * - 128 peers: Raft groups have at most 7 voters plus learners; the bound only stops a flood.
 * - 64 handshakes: peers finish theirs in a round trip or two, so even a whole cluster restarting at
 *   once has a handful in progress; unauthenticated connections must not hold memory and timers
 *   without bound (the handshake timeout frees the places of the silent ones).
 */
export const TRANSPORT_DEFAULTS = {
  backoffInitialMs: 50,
  backoffMaxMs: 2_000,
  handshakeTimeoutMs: 3_000,
  payloadBytesMax: 16 << 20,
  queuePayloadsMax: 10_000,
  queueBytesMax: 32 << 20,
  peersMax: 128,
  handshakesMax: 64,
} as const;

export function resolveOptions(options: PeerTransportOptions): ResolvedOptions {
  // Without the keys given as undefined, so that they take the defaults.
  const defined = Object.fromEntries(
    Object.entries(options).filter(([, value]) => value !== undefined),
  ) as PeerTransportOptions;
  const resolved: ResolvedOptions = {
    peers: {},
    token: "",
    tls: undefined,
    log: () => {},
    random: Math.random,
    ...TRANSPORT_DEFAULTS,
    ...defined,
  };
  assert(ID_PATTERN.test(resolved.clusterId), () => `invalid cluster id ${JSON.stringify(resolved.clusterId)}`);
  assert(ID_PATTERN.test(resolved.nodeId), () => `invalid node id ${JSON.stringify(resolved.nodeId)}`);
  assert(
    resolved.backoffInitialMs > 0 && resolved.backoffMaxMs >= resolved.backoffInitialMs,
    "need 0 < backoffInitialMs ≤ backoffMaxMs",
  );
  assert(resolved.handshakeTimeoutMs > 0, "handshakeTimeoutMs must be positive");
  assert(resolved.payloadBytesMax > 0 && resolved.queuePayloadsMax > 0, "payload and queue limits must be positive");
  assert(resolved.queueBytesMax >= resolved.payloadBytesMax, "queueBytesMax must hold at least one largest payload");
  assert(resolved.peersMax > 0 && resolved.handshakesMax > 0, "peersMax and handshakesMax must be positive");
  return resolved;
}

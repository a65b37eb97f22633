import { assert } from "../../errors.ts";
import { UDP_PAYLOAD_BYTES_MAX } from "./codec.ts";
import { ID_PATTERN } from "./node-state.ts";

export interface GossiperOptions {
  /** Datagrams of any other cluster are dropped. */
  clusterId: string;
  nodeId: string;
  /**
   * This incarnation of the node. Each start must use a higher one than the last (the server can take
   * its start time in ms), so that peers let the fresh state replace the old one.
   */
  generation: number;
  /** "host:port" where this node receives gossip, and where it serves gRPC; published to peers. */
  gossipAddress: string;
  grpcAddress: string;
  /** Gossip addresses to join through; this node's own address may be among them. */
  seeds?: readonly string[];
  /** A seeded PRNG (src/random.ts mulberry32): all the gossiper's choices come from it. */
  random: () => number;
  /** The start time, on the same monotonic clock as every later call. */
  nowMs: number;
  /** More keys to publish (load, zone); see NodeState for the limits. */
  metadata?: Readonly<Record<string, string>>;

  /** How often the caller calls tick(); the phi detector's first estimate of a heartbeat interval. */
  intervalMs?: number;
  /** Live peers a tick sends a Syn to. */
  fanout?: number;
  /** phi from which a peer is dead. */
  phiThreshold?: number;
  /** phi from which a peer is suspect (shown, changes nothing else). */
  suspectPhi?: number;
  acceptablePauseMs?: number;
  stdDevFloorMs?: number;
  windowSamplesMax?: number;
  /** The largest datagram sent, and received: a larger one is dropped as oversized. */
  datagramBytesMax?: number;
  /** A dead or left peer whose last heartbeat is this old is forgotten. */
  forgetAfterMs?: number;
  /** Nodes known at most (a bound against a flood of invented ids). */
  nodesMax?: number;
}

export type ResolvedOptions = Required<GossiperOptions>;

/**
 * Defaults, and why:
 * - 500 ms interval, fanout 3: a change reaches 100 nodes in a few seconds (see the simulation tests).
 * - phi 8: Akka's and Cassandra's threshold; one false suspicion in 10^8 if intervals were normal.
 * - suspect from phi 4 (half the threshold): a peer ~10^4 times less likely to be fine than usual is
 *   worth showing before it is declared dead.
 * - acceptable pause 1500 ms (three intervals) and a 100 ms floor: a peer is dead after
 *   mean + 1500 + 5.6 × σ ms without news — about 2.6 s at σ = 100 ms — yet a few lost datagrams in
 *   a row are not a death (the 5%-loss simulation over an hour shows no false one).
 * - 250 samples: about two minutes of history at 500 ms, to follow a network that changes.
 * - 1400-byte datagrams: below every Ethernet path MTU (1500, less 40 of IPv6 and 8 of UDP, less room
 *   for a tunnel), so that no datagram is fragmented: a fragmented one is lost whole when any
 *   fragment is, and some networks drop fragments outright. The same limit as HashiCorp memberlist.
 * - forget after 24 hours (Cassandra keeps a dead node's state about as long): the ring must still
 *   see a dead node as a replica holder until an operator or a rebalance removes it.
 */
export const GOSSIP_DEFAULTS = {
  intervalMs: 500,
  fanout: 3,
  phiThreshold: 8,
  suspectPhi: 4,
  acceptablePauseMs: 1_500,
  stdDevFloorMs: 100,
  windowSamplesMax: 250,
  datagramBytesMax: 1_400,
  forgetAfterMs: 24 * 60 * 60 * 1_000,
  nodesMax: 1_024,
} as const;

/** The smallest datagram that still holds one full entry of a 255-byte value with its headers. */
const DATAGRAM_BYTES_MIN = 576;

export function resolveOptions(options: GossiperOptions): ResolvedOptions {
  const resolved: ResolvedOptions = { seeds: [], metadata: {}, ...GOSSIP_DEFAULTS, ...withoutUndefined(options) };
  assert(ID_PATTERN.test(resolved.clusterId), () => `invalid cluster id ${JSON.stringify(resolved.clusterId)}`);
  assert(ID_PATTERN.test(resolved.nodeId), () => `invalid node id ${JSON.stringify(resolved.nodeId)}`);
  assert(
    resolved.intervalMs > 0 && Number.isInteger(resolved.fanout) && resolved.fanout >= 1,
    "intervalMs and fanout must be positive",
  );
  assert(resolved.suspectPhi > 0 && resolved.suspectPhi <= resolved.phiThreshold, "need 0 < suspectPhi ≤ phiThreshold");
  assert(
    resolved.datagramBytesMax >= DATAGRAM_BYTES_MIN && resolved.datagramBytesMax <= UDP_PAYLOAD_BYTES_MAX,
    () => `datagramBytesMax must be within ${DATAGRAM_BYTES_MIN}..${UDP_PAYLOAD_BYTES_MAX}`,
  );
  return resolved;
}

function withoutUndefined<T extends object>(options: T): T {
  return Object.fromEntries(Object.entries(options).filter(([, value]) => value !== undefined)) as T;
}

import { randomInt } from "node:crypto";
import { lookup } from "node:dns/promises";
import { formatAddress } from "../address.ts";
import { HomeKvError } from "../errors.ts";
import { mulberry32 } from "../random.ts";
import { createGossiper, type GossipCounters, type Gossiper, type Member, type Outgoing } from "./gossip/index.ts";

/**
 * The I/O around the pure gossiper (src/cluster/gossip): a UDP socket, a timer that ticks it, the
 * monotonic clock. Everything the gossiper decides, it decides in gossip/; this file only carries
 * datagrams both ways.
 */
export interface MembershipOptions {
  clusterId: string;
  nodeId: string;
  /** Where to receive gossip: the server's host, and a port (0: any free one). */
  host: string;
  gossipPort: number;
  /**
   * Published to peers so that they, and clients, can reach this node's gRPC service; "" when the
   * server is not bound yet (then `publishGrpcAddress` once it is).
   */
  grpcAddress: string;
  /** More keys to publish from the start (a replicated member's peer address…). */
  metadata?: Readonly<Record<string, string>>;
  /** `host:port` gossip addresses to join through. */
  join: readonly string[];
  intervalMs: number;
  phiThreshold: number;
  /** Called with a line when a peer changes status (joined, suspect, dead, alive again, left). */
  onChange?: (line: string) => void;
}

export interface Membership {
  readonly clusterId: string;
  readonly gossipAddress: string;
  members(): Member[];
  counters(): GossipCounters;
  /** Publishes (or changes) one of this node's metadata keys. */
  publish(key: string, value: string): void;
  publishGrpcAddress(address: string): void;
  /**
   * Tells the peers this node is leaving (they show it as left at once), gossips on for one more
   * interval so that "left" spreads even where a push was lost, then closes the socket.
   */
  leave(): Promise<void>;
}

/** A tick happens every interval ± this share of it, so that nodes started together do not gossip in lockstep. */
const TICK_JITTER = 0.1;

export async function startMembership(options: MembershipOptions): Promise<Membership> {
  const now = () => performance.now();
  const seeds = await Promise.all(options.join.map(resolveGossipAddress));
  // Fed from outside: each run makes different choices, as gossip should; the simulator seeds its own.
  const random = mulberry32(randomInt(2 ** 32));
  let gossiper: Gossiper | undefined;
  const pending: { from: string; data: Uint8Array; atMs: number }[] = [];
  const socket = await Bun.udpSocket({
    hostname: options.host,
    port: options.gossipPort,
    socket: {
      data(_socket, data, port, address) {
        const from = formatAddress(address, port);
        if (gossiper) send(gossiper.receive(from, data, now()));
        else if (pending.length < 64) pending.push({ from, data, atMs: now() });
      },
      // The kernel reports an earlier datagram refused (ICMP port unreachable: a peer that died)
      // as an error on a later receive: that datagram is lost, which gossip bears. Left unhandled,
      // it would throw out of the tick and stop this node's gossip, making it look dead to all.
      error() {},
    },
  }).catch((error: Error) => {
    throw new HomeKvError(
      "E_LISTEN",
      `cannot listen for gossip on ${formatAddress(options.host, options.gossipPort)}: ${error.message}`,
    );
  });
  const gossipAddress = formatAddress(options.host, socket.port);
  const send = (out: readonly Outgoing[]) => {
    for (const { to, datagram } of out) {
      const { host, port } = splitAddress(to);
      // A full send buffer or an unreachable peer loses a datagram; gossip is built to bear that.
      // The send itself may throw for the same reason (ECONNREFUSED from an earlier one).
      if (socket.closed) continue;
      try {
        socket.send(datagram, port, host);
      } catch {
        // Lost like any other datagram: the next rounds carry the same state.
      }
    }
  };
  const active = createGossiper({
    clusterId: options.clusterId,
    nodeId: options.nodeId,
    // Wall-clock milliseconds: a restart comes back with a higher generation than the last run's.
    generation: Date.now(),
    gossipAddress,
    grpcAddress: options.grpcAddress,
    ...(options.metadata ? { metadata: options.metadata } : {}),
    seeds,
    random,
    nowMs: now(),
    intervalMs: options.intervalMs,
    phiThreshold: options.phiThreshold,
  });
  gossiper = active;
  for (const early of pending.splice(0)) send(active.receive(early.from, early.data, Math.max(early.atMs, now())));

  let statuses = new Map<string, string>();
  const reportChanges = () => {
    const next = new Map(
      active
        .members(now())
        .filter((member) => !member.isSelf)
        .map((member) => [member.nodeId, member.status]),
    );
    for (const [id, status] of next) {
      const before = statuses.get(id);
      if (before !== status)
        options.onChange?.(
          before === undefined ? `node ${id} joined (${status})` : `node ${id}: ${before} → ${status}`,
        );
    }
    statuses = next;
  };
  let timer: ReturnType<typeof setTimeout> | undefined;
  const schedule = () => {
    const delayMs = options.intervalMs * (1 - TICK_JITTER + 2 * TICK_JITTER * random());
    timer = setTimeout(() => {
      send(active.tick(now()));
      reportChanges();
      schedule();
    }, delayMs);
  };
  schedule();

  return {
    clusterId: options.clusterId,
    gossipAddress,
    members: () => active.members(now()),
    counters: () => active.counters(),
    publish: (key, value) => active.setMetadata(key, value),
    publishGrpcAddress: (address) => active.setGrpcAddress(address),
    async leave() {
      send(active.leave(now()));
      await Bun.sleep(options.intervalMs);
      clearTimeout(timer);
      socket.close();
    },
  };
}

/** A join address with its host resolved: datagrams go to IP addresses, and answers come from them. */
async function resolveGossipAddress(address: string): Promise<string> {
  const { host, port } = splitAddress(address);
  if (!(port > 0 && port < 65_536))
    throw new HomeKvError("E_CONFIG", `join address ${JSON.stringify(address)} needs a port, like 127.0.0.1:20002`);
  try {
    const resolved = await lookup(host);
    return formatAddress(resolved.address, port);
  } catch {
    throw new HomeKvError("E_CONFIG", `cannot resolve the host of join address ${JSON.stringify(address)}`);
  }
}

function splitAddress(address: string): { host: string; port: number } {
  const colon = address.lastIndexOf(":");
  return { host: address.slice(0, colon).replace(/^\[|\]$/g, ""), port: Number(address.slice(colon + 1)) };
}

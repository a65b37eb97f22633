import { readFileSync } from "node:fs";

/** The lowest port we hand out: above the well-known and most registered services' ports. */
const LOWEST_PORT = 10_000;

/** The first port of the kernel's ephemeral range, which outgoing connections take their local ports from. */
function ephemeralStart(): number {
  try {
    const first = Number(readFileSync("/proc/sys/net/ipv4/ip_local_port_range", "utf8").trim().split(/\s+/)[0]);
    return Number.isInteger(first) && first > LOWEST_PORT + 1_000 ? first : 32_768;
  } catch {
    return 32_768;
  }
}

const handedOut = new Set<number>();

/**
 * Loopback ports nothing listens on now (each was bound by this process, then let go), for a
 * program that must be told its port before it starts (a peer port named in --initial-cluster).
 *
 * They are chosen below the kernel's ephemeral range: a port from that range, once let go, may
 * become the local port of any outgoing connection (a member dialling its peers) before the
 * program binds it, and the program then fails to start. Below the range only another listener can
 * take it, and none of ours is handed the same port twice.
 */
export function freePorts(count: number): number[] {
  const span = ephemeralStart() - LOWEST_PORT;
  const ports: number[] = [];
  for (let tries = 0; ports.length < count; tries += 1) {
    if (tries >= span) throw new Error(`no free loopback port below ${LOWEST_PORT + span}`);
    const port = LOWEST_PORT + Math.floor(Math.random() * span);
    if (handedOut.has(port)) continue;
    try {
      Bun.listen({ hostname: "127.0.0.1", port, socket: { data() {} } }).stop(true);
    } catch {
      continue;
    }
    handedOut.add(port);
    ports.push(port);
  }
  return ports;
}

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

/** How many disjoint slices of the range the test workers' processes draw from. */
const SLICES = 8;

/**
 * The part of the range this process draws from. `bun test --parallel` runs files in worker
 * processes (BUN_TEST_WORKER_ID 1, 2, ...; the programs a test starts inherit it), each with its
 * own `handedOut`, emptied for every file: two workers drawing from one range could hand out the
 * same port, and a member of one test's cluster could then dial another's (they share cluster ids
 * and names). Each worker draws from a slice of its own; a run without workers, from the first.
 */
function slice(span: number): { first: number; size: number } {
  const size = Math.floor(span / SLICES);
  const worker = Number(process.env.BUN_TEST_WORKER_ID ?? 0);
  const slot = Number.isInteger(worker) && worker > 0 ? worker % SLICES : 0;
  return { first: LOWEST_PORT + slot * size, size };
}

/**
 * Loopback ports nothing listens on now (each was bound by this process, then let go), for a
 * program that must be told its port before it starts (a peer port named in --initial-cluster).
 *
 * They are chosen below the kernel's ephemeral range: a port from that range, once let go, may
 * become the local port of any outgoing connection (a member dialling its peers) before the
 * program binds it, and the program then fails to start. Below the range only another listener can
 * take it: none of this process's is handed the same port twice, and other test workers draw from
 * other slices of the range.
 */
export function freePorts(count: number): number[] {
  const { first, size } = slice(ephemeralStart() - LOWEST_PORT);
  const ports: number[] = [];
  for (let tries = 0; ports.length < count; tries += 1) {
    if (tries >= size) throw new Error(`no free loopback port in ${first}..${first + size - 1}`);
    const port = first + Math.floor(Math.random() * size);
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

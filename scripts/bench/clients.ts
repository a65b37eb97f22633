/**
 * Where a benchmark's clients connect in a 3-member cluster: every client on the leader, or spread
 * over all members (a follower forwards writes to its leader and reads through ReadIndex); and the
 * keyspace written through the leader before a run that reads it.
 */
import { connectH2Pool, type H2Pool } from "../../src/bench/h2-unary.ts";
import { prefillRequests } from "../../src/bench/workload.ts";
import type { BenchCluster } from "./cluster.ts";
import { checkedOnce } from "./h2load.ts";

export type Placement = "leader" | "spread";

/** The members the clients of a run connect to: the leader alone, or all three. */
export async function targets(cluster: BenchCluster, placement: Placement): Promise<string[]> {
  return placement === "leader" ? [(await cluster.leader()).address] : cluster.members.map((member) => member.address);
}

/** One pool over connections to several members, each call on the next in turn. */
export function roundRobin(pools: H2Pool[]): H2Pool {
  let next = 0;
  return {
    call: (path, message) => pools[next++ % pools.length]!.call(path, message),
    close: () => {
      for (const pool of pools) pool.close();
    },
  };
}

/** One HTTP/2 connection to each target of `placement`, the calls dealt among them in turn. */
export async function placedPool(cluster: BenchCluster, placement: Placement): Promise<H2Pool> {
  return roundRobin((await targets(cluster, placement)).map((address) => connectH2Pool(address, 1)));
}

/** Writes every key of the keyspace once through the leader, so that gets find values. */
export async function prefill(cluster: BenchCluster, keyspace: { keys: number; valueSize: number }): Promise<void> {
  const pool = connectH2Pool((await cluster.leader()).address, 1);
  try {
    // 100 keys per request: within etcd's default --max-txn-ops (128).
    for (const { path, message } of prefillRequests(keyspace, 100, cluster.protocol))
      await checkedOnce(pool, path, message);
  } finally {
    pool.close();
  }
}

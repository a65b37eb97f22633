import type { RpcStats } from "./rpc-stats.ts";

/** Get, Set and Del calls, counted as the original HomeKV counted them (`cmds_count`), and the newer key-value commands beside them. */
const COUNTED_METHODS = ["Get", "Set", "Del", "Scan", "Txn", "Compact", "Watch"].map(
  (name) => `/homekv_service.HomeKvService/${name}`,
);

export interface CommandCounts {
  served: number;
  rejected: number;
}

/**
 * `cmds_count` and `cmds_rejected`, from the per-method, per-status call counts the RPC stats
 * interceptor keeps anyway: every counted command once, however it ended.
 */
export function commandCounts(stats: RpcStats): CommandCounts {
  const counts: CommandCounts = { served: 0, rejected: 0 };
  for (const method of COUNTED_METHODS) {
    for (const [status, calls] of stats.calls.get(method) ?? []) {
      if (status === "OK") counts.served += calls;
      else counts.rejected += calls;
    }
  }
  return counts;
}

import { defineCommand } from "citty";
import type { RingResponse } from "../gen/homekv_service.ts";
import { connectionArgs, withClient } from "./connection.ts";
import { table } from "./format.ts";

export const ringCommand = defineCommand({
  meta: {
    name: "ring",
    description:
      "Show a partitioned cluster's partitions: replicas (preferred leader first), leader, each node's share",
  },
  args: { ...connectionArgs },
  async run({ args }) {
    const ring = await withClient(args, (client) => client.ring());
    if (args.json) {
      console.log(JSON.stringify(toJson(ring)));
      return;
    }
    console.log(
      `cluster ${ring.clusterId}, ${ring.partitions.length} partitions of ${ring.replication} replicas, as ${ring.nodeId} sees them (leader "-": ${ring.nodeId} holds no replica of it)`,
    );
    const rows = ring.partitions.map((p) => [
      String(p.partition),
      p.replicas.join(","),
      p.local ? p.leader || "(none right now)" : "-",
    ]);
    console.log(table(["PARTITION", "REPLICAS", "LEADER"], rows));
    console.log();
    const shares = ring.shares.map((s) => [s.nodeId, String(s.replicas), String(s.preferredLeaders)]);
    console.log(table(["NODE", "REPLICAS", "PREFERRED LEADER OF"], shares));
  },
});

function toJson(ring: RingResponse) {
  return {
    cluster_id: ring.clusterId,
    node_id: ring.nodeId,
    replication: ring.replication,
    partitions: ring.partitions.map((p) => ({
      partition: p.partition,
      replicas: p.replicas,
      local: p.local,
      leader: p.leader,
    })),
    shares: ring.shares.map((s) => ({
      node_id: s.nodeId,
      replicas: s.replicas,
      preferred_leaders: s.preferredLeaders,
    })),
  };
}

import { defineCommand } from "citty";
import { type Member, member_StatusToJSON } from "../gen/homekv_service.ts";
import { connectionArgs, withClient } from "./connection.ts";
import { table } from "./format.ts";

export const membersCommand = defineCommand({
  meta: { name: "members", description: "Show the cluster as the server sees it through gossip: nodes, status, phi" },
  args: { ...connectionArgs },
  async run({ args }) {
    const { clusterId, members } = await withClient(args, (client) => client.members());
    if (args.json) {
      console.log(JSON.stringify({ cluster_id: clusterId, members: members.map(toJson) }));
      return;
    }
    const rows = members.map((member) => [
      `${member.nodeId}${member.isSelf ? " *" : ""}`,
      status(member),
      member.grpcAddress,
      member.gossipAddress || "-",
      member.phi.toFixed(2),
      String(member.heartbeat),
      String(member.generation),
      member.isSelf ? "-" : `${(member.lastSeenMsAgo / 1000).toFixed(1)}s ago`,
    ]);
    console.log(`cluster ${clusterId} (* is the node answering)`);
    console.log(table(["NODE", "STATUS", "GRPC", "GOSSIP", "PHI", "HEARTBEAT", "GENERATION", "LAST SEEN"], rows));
  },
});

function status(member: Member): string {
  return member_StatusToJSON(member.status).toLowerCase();
}

function toJson(member: Member) {
  return {
    node_id: member.nodeId,
    status: status(member),
    grpc_address: member.grpcAddress,
    gossip_address: member.gossipAddress,
    phi: member.phi,
    heartbeat: member.heartbeat,
    generation: member.generation,
    last_seen_ms_ago: member.lastSeenMsAgo,
    is_self: member.isSelf,
    metadata: member.metadata,
  };
}

import { defineCommand } from "citty";
import type { HomeKvClient } from "../client/client.ts";
import type { ClusterMember, ClusterStatusResponse } from "../gen/homekv_service.ts";
import { connectionArgs, withClient } from "./connection.ts";
import { table } from "./format.ts";
import { UsageError } from "./usage-error.ts";

/** A change may wait for a leadership transfer (10 s on the server): more than the usual 5 s. */
const CHANGE_TIMEOUT_MS = "20000";

type ConnectionArgs = Parameters<typeof withClient>[0] & { json?: boolean };

/** Runs a change (or the status) and prints the members after it, as a table or as JSON. */
async function show(
  args: ConnectionArgs,
  call: (client: HomeKvClient) => Promise<ClusterStatusResponse>,
  done?: string,
): Promise<void> {
  const status = await withClient(args, call);
  if (args.json) {
    console.log(JSON.stringify(toJson(status)));
    return;
  }
  if (done) console.log(done);
  console.log(`cluster ${status.clusterId}, leader ${status.leader || "(none right now)"} (* is the member answering)`);
  const rows = status.members.map((m) => [
    `${m.nodeId}${m.isSelf ? " *" : ""}`,
    m.role,
    m.voter ? "yes" : "no",
    m.peerAddress || "-",
    m.grpcAddress || "-",
    ...(m.role === "unreachable" ? ["-", "-", "-"] : [String(m.term), String(m.commitIndex), String(m.appliedIndex)]),
    String(m.lag),
  ]);
  console.log(table(["NODE", "ROLE", "VOTER", "PEER", "GRPC", "TERM", "COMMIT", "APPLIED", "LAG"], rows));
}

function toJson(status: ClusterStatusResponse) {
  return {
    cluster_id: status.clusterId,
    leader: status.leader,
    members: status.members.map((m: ClusterMember) => ({
      node_id: m.nodeId,
      peer_address: m.peerAddress,
      grpc_address: m.grpcAddress,
      role: m.role,
      voter: m.voter,
      term: m.term,
      commit_index: m.commitIndex,
      applied_index: m.appliedIndex,
      lag: m.lag,
      is_self: m.isSelf,
    })),
  };
}

const changeArgs = {
  ...connectionArgs,
  timeout: { ...connectionArgs.timeout, description: "Milliseconds to wait for the change (default 20000)" },
};

const withChangeTimeout = <T extends ConnectionArgs>(args: T): T => ({
  ...args,
  timeout: args.timeout ?? CHANGE_TIMEOUT_MS,
});

export const clusterCommand = defineCommand({
  meta: { name: "cluster", description: "Show and change the members of a replicated cluster (Raft)" },
  subCommands: {
    status: defineCommand({
      meta: {
        name: "status",
        description: "Every member: role, addresses, term, commit and applied index, lag behind the leader",
      },
      args: { ...connectionArgs },
      run: ({ args }) => show(args, (client) => client.clusterStatus()),
    }),
    add: defineCommand({
      meta: {
        name: "add",
        description:
          "Add a member (started with --initial-cluster-state existing) as a learner: NAME=HOST:PEERPORT. It is made a voter once caught up while the cluster has fewer than --voters",
      },
      args: { member: { type: "positional", required: true, description: "NAME=HOST:PEERPORT" }, ...changeArgs },
      run({ args }) {
        const match = /^([^=]+)=(.+)$/.exec(args.member);
        if (!match) throw new UsageError(`the member is NAME=HOST:PEERPORT, not ${JSON.stringify(args.member)}`);
        const [name, address] = [match[1]!, match[2]!];
        return show(
          withChangeTimeout(args),
          (client) => client.clusterAdd(name, address),
          `added ${name} (${address}) as a learner`,
        );
      },
    }),
    remove: defineCommand({
      meta: { name: "remove", description: "Remove a member (refused when the voters left could not form a quorum)" },
      args: { name: { type: "positional", required: true, description: "The member's node id" }, ...changeArgs },
      run: ({ args }) =>
        show(withChangeTimeout(args), (client) => client.clusterRemove(args.name), `removed ${args.name}`),
    }),
    "transfer-leader": defineCommand({
      meta: { name: "transfer-leader", description: "Hand leadership to a voter, and wait until it leads" },
      args: { name: { type: "positional", required: true, description: "The voter's node id" }, ...changeArgs },
      run: ({ args }) =>
        show(withChangeTimeout(args), (client) => client.clusterTransferLeader(args.name), `${args.name} leads`),
    }),
  },
});

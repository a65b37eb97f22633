import { resolve } from "node:path";
import { defineCommand } from "citty";
import { ID_PATTERN } from "../cluster/gossip/node-state.ts";
import { restoreMember } from "../cluster/replication/restore-member.ts";
import { parsePeerAddress } from "../cluster/transport/peer-address.ts";
import { realFileSystem } from "../io/fs/real-fs.ts";
import { initialClusterMembers } from "./resolve-serve-config.ts";
import { UsageError } from "./usage-error.ts";

export const restoreCommand = defineCommand({
  meta: {
    name: "restore",
    description:
      "Found a new replicated cluster from a backup (homekv backup): writes the data directory of its one member, which `homekv serve` then starts; add the others with `homekv cluster add` (they are sent the data). Runs here, on the files, not against a server",
  },
  args: {
    backup: { type: "positional", description: "The backup's directory", required: false },
    "data-dir": { type: "string", description: "The member's data directory to create (it must not exist)" },
    "node-id": { type: "string", description: "The member's name, as its `homekv serve --node-id`" },
    "initial-cluster": {
      type: "string",
      description: "NAME=HOST:PEERPORT of this one member, as its `homekv serve --initial-cluster`",
    },
    "cluster-id": {
      type: "string",
      description:
        "What the new cluster's id starts with (default homekv): it is <this>.restored-<ms>, which its members are then started with",
    },
    json: { type: "boolean", description: "Print what was restored as JSON" },
  },
  async run({ args }) {
    if (args._.length !== 1)
      throw new UsageError(
        "restore needs one backup: homekv restore BACKUP --data-dir DIR --node-id NAME --initial-cluster NAME=HOST:PEERPORT",
      );
    const dataDir = args["data-dir"];
    const nodeId = args["node-id"];
    const list = args["initial-cluster"];
    if (dataDir === undefined || nodeId === undefined || list === undefined)
      throw new UsageError("restore needs --data-dir, --node-id and --initial-cluster: the member it writes");
    const members = initialClusterMembers(list, nodeId);
    if (members.length !== 1)
      throw new UsageError(
        `restore founds a cluster of one member, and initial-cluster names ${members.length}: restore one, start it, then add the others with homekv cluster add (they are sent its data)`,
      );
    const founder = members[0]!;
    const peer = parsePeerAddress(founder.address);
    const backup = resolve(args._[0]!);
    const target = resolve(dataDir);
    const base = args["cluster-id"] ?? "homekv";
    if (!ID_PATTERN.test(base))
      throw new UsageError(
        `cluster-id must be 1 to 64 letters, digits, dots, dashes or underscores, starting with a letter or digit, not ${JSON.stringify(base)}`,
      );
    const restored = await restoreMember({
      fs: realFileSystem,
      backup,
      dataDir: target,
      founder: { name: founder.name, peerAddress: peer.text },
      clusterIdBase: base,
    });
    const { clusterId } = restored;
    const serve = `homekv serve --node-id ${founder.name} --cluster-id ${clusterId} --data-dir ${shellWord(target)} --host ${shellWord(peer.host)} --peer-port ${peer.port} --initial-cluster ${shellWord(`${founder.name}=${peer.text}`)}`;
    console.log(
      args.json
        ? JSON.stringify({ ...restored, dataDir: target, member: founder.name, serve })
        : `restored revision ${restored.revision} (${restored.keys} keys) from ${backup} into ${target}: member ${founder.name} of a new cluster of one, ${clusterId}; start it with ${serve} (and -p for its gRPC port), then add the others with homekv cluster add, each started with --cluster-id ${clusterId} on an empty --data-dir with --initial-cluster-state existing`,
    );
  },
});

/** `word` as one shell word: as it is when nothing in it is special, single-quoted otherwise. */
function shellWord(word: string): string {
  return /^[\w@%+=:,./-]+$/.test(word) ? word : `'${word.replaceAll("'", "'\\''")}'`;
}

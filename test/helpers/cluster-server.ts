import { HomeKvClient } from "../../src/client/client.ts";
import { type ServerProcess, type ServerProcessOptions, startServerProcess, staticCluster } from "./processes.ts";
import { waitFor } from "./wait.ts";

/**
 * `npm run test:cluster-api` runs the API tests with HOMEKV_TEST_SERVER=cluster-follower: each
 * server they ask for is then a member of a replicated cluster of three (`--initial-cluster`), and
 * the one they talk to is a follower, so every call crosses forwarding or a read barrier.
 */
export const CLUSTER_FOLLOWER = process.env.HOMEKV_TEST_SERVER === "cluster-follower";

const portsByDataDir = new Map<string, readonly number[]>();

/** Flags a member cannot take (it keeps its Raft log on disk): left out of its command line. */
const SINGLE_SERVER_ONLY = new Set(["--in-memory"]);

/**
 * Three `homekv serve` members with `extraArgs` each; resolves with the first that follows once a
 * leader is known. Stopping it stops all three (its exit code is the answer).
 */
export async function startClusterFollower(
  extraArgs: readonly string[],
  options: ServerProcessOptions,
): Promise<ServerProcess> {
  const names = ["n1", "n2", "n3"];
  const args = extraArgs.filter((arg) => !SINGLE_SERVER_ONLY.has(arg));
  // A test that names a data directory restarts on it: each member keeps a directory of its own
  // within it, and its peer port (the founding entries in the Raft logs name the addresses).
  const dataDir = args.includes("--data-dir") ? args[args.indexOf("--data-dir") + 1]! : undefined;
  const cluster = staticCluster(names, dataDir ? portsByDataDir.get(dataDir) : undefined);
  if (dataDir) portsByDataDir.set(dataDir, cluster.peerPorts);
  const ownArgs = (name: string) =>
    dataDir === undefined ? args : args.map((arg, i) => (args[i - 1] === "--data-dir" ? `${dataDir}/${name}` : arg));
  const members: ServerProcess[] = [];
  const stopAll = (signal?: NodeJS.Signals) => Promise.all(members.map((member) => member.stop(signal)));
  try {
    for (const name of names)
      members.push(await startServerProcess([...cluster.memberArgs(name), ...ownArgs(name)], options));
    const follower = await waitFor(
      async () => {
        const roles = await Promise.all(members.map((member) => roleOf(member.address)));
        if (roles.filter((role) => role === "leader").length !== 1) return undefined;
        return members[roles.indexOf("follower")];
      },
      { what: "a leader, and a member that follows it", timeoutMs: 20_000 },
    );
    return {
      ...follower,
      output: () => follower.output(),
      async stop(signal) {
        const codes = await stopAll(signal);
        return codes[members.indexOf(follower)]!;
      },
    };
  } catch (error) {
    await stopAll("SIGKILL");
    throw error;
  }
}

async function roleOf(address: string): Promise<string | undefined> {
  const client = new HomeKvClient({ address, timeoutMs: 2_000 });
  try {
    return (await client.metrics()).raftRole;
  } catch {
    return undefined;
  } finally {
    client.close();
  }
}

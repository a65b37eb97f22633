import { afterEach } from "bun:test";
import { HomeKvClient } from "../../src/client/client.ts";
import { type ServerProcess, scratchDir, startServerProcess, staticCluster } from "./processes.ts";
import { waitFor } from "./wait.ts";

export interface PartitionedNode {
  name: string;
  dir: string;
  server: ServerProcess;
  client: HomeKvClient;
}

/**
 * Partitioned clusters of real `homekv serve --partitions P` processes for the tests of a file,
 * each node on its own data directory (kept across its restarts), all killed and removed after
 * each test. `start(name)` starts (or starts again) one node with a client of it.
 */
export function partitionedClusters() {
  const cleanups: (() => unknown)[] = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });
  return function cluster(
    options: {
      names?: readonly string[];
      /** Nodes started later to join (--initial-cluster-state existing), added by `homekv cluster add`. */
      joiners?: readonly string[];
      /** Each node's --partitions (8 by default). */
      partitionsOf?: (name: string) => number;
      replicas?: number;
      /** More flags for every node's `serve`. */
      args?: readonly string[];
    } = {},
  ) {
    const names = options.names ?? ["n1", "n2", "n3"];
    const joiners = options.joiners ?? [];
    // The founders name each other; a joiner names every node, itself included.
    const everyone = staticCluster([...names, ...joiners]);
    const founders = staticCluster(names, everyone.peerPorts.slice(0, names.length));
    const memberArgs = (name: string) =>
      joiners.includes(name)
        ? [...everyone.memberArgs(name), "--initial-cluster-state", "existing"]
        : founders.memberArgs(name);
    const dirs = new Map(
      [...names, ...joiners].map((name) => {
        const dir = scratchDir(`homekv-${name}-`);
        cleanups.push(dir.cleanup);
        return [name, dir.path] as const;
      }),
    );
    const start = async (name: string): Promise<PartitionedNode> => {
      const dir = dirs.get(name)!;
      const partitions = options.partitionsOf?.(name) ?? 8;
      const server = await startServerProcess([
        ...memberArgs(name),
        ...["--data-dir", dir, "--partitions", String(partitions), "--replicas", String(options.replicas ?? 3)],
        ...(options.args ?? []),
      ]);
      const client = new HomeKvClient({ address: server.address, timeoutMs: 10_000 });
      cleanups.push(
        async () => {
          server.proc.kill("SIGCONT"); // a test may have paused it
          await server.stop("SIGKILL");
        },
        () => client.close(),
      );
      return { name, dir, server, client };
    };
    const peerAddress = (name: string) => `127.0.0.1:${everyone.peerPorts[[...names, ...joiners].indexOf(name)]}`;
    return { start, startAll: async () => Promise.all(names.map(start)), peerAddress };
  };
}

/** A multi-key Set through `node`, retried while the cluster founds itself and elects its leaders. */
export function setWhenReady(node: PartitionedNode, pairs: (readonly [string, string])[], timeoutMs = 30_000) {
  let lastError: unknown;
  return waitFor(
    async () => {
      try {
        return await node.client.set(pairs);
      } catch (error) {
        lastError = error;
        return undefined;
      }
    },
    {
      what: `${node.name} to take a Set across partitions`,
      timeoutMs,
      intervalMs: 100,
      detail: () => `last error: ${String(lastError)}`,
    },
  );
}

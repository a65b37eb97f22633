import { afterEach } from "bun:test";
import { META_GROUP, MetaGroup, type MetaGroupOptions } from "../../../src/cluster/meta/meta-group.ts";
import { serveTimestamps, TimestampClient } from "../../../src/cluster/meta/timestamp-rpc.ts";
import { RaftLogEngine } from "../../../src/cluster/raft/group-log-engine.ts";
import { peerChannels } from "../../../src/cluster/replication/peer-channels.ts";
import { createPeerRpc, type PeerRpc } from "../../../src/cluster/replication/peer-rpc.ts";
import { RaftHost } from "../../../src/cluster/replication/raft-host.ts";
import type { Placement } from "../../../src/cluster/ring/placement.ts";
import { type FaultyTransport, withFaults } from "../../../src/cluster/transport/fault-injection.ts";
import { createPeerTransport } from "../../../src/cluster/transport/peer-transport.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { freePorts } from "../../helpers/free-ports.ts";
import { waitFor } from "../../helpers/wait.ts";

const TICK_MS = 10;
const IDS = [1, 2, 3];
export const names = new Map(IDS.map((id) => [id, `n${id}`]));

export interface MetaNode {
  id: number;
  host: RaftHost;
  transport: FaultyTransport;
  rpc: PeerRpc;
  meta: MetaGroup;
  /** This node's timestamps, from wherever the meta leader is. */
  timestamps: TimestampClient;
  /** The placements its replica was told of (onPlacement), in order, across restarts. */
  placements: Placement[];
  /** Calls its TimestampClient made to another node. */
  readonly timestampCalls: number;
  /** Nodes this one's failure detector (gossip, in a server) takes for dead. */
  suspects: Set<number>;
  /** Whether `stop` was called: the node is down. */
  readonly stopped: boolean;
  /** Stops this node's replica of the meta group and starts it again on its log (a restart), with `founding` if given. */
  restartMeta(founding?: MetaGroupOptions["founding"]): Promise<void>;
  /** The index its meta log was last compacted to (0: never). */
  compactedIndex(): number;
  stop(): void;
}

const running: MetaNode[] = [];
afterEach(() => {
  for (const node of running.splice(0)) node.stop();
});

/**
 * The meta group on three nodes, each in its own host over a real transport (loopback, behind the
 * fault-injecting wrapper), with peer RPC serving and asking for timestamps. Stopped after each test.
 */
export async function startMetaGroup(
  options: Pick<MetaGroupOptions, "timestampWindow" | "compactAfterEntries" | "founding"> = {},
): Promise<MetaNode[]> {
  const ports = freePorts(IDS.length);
  const nodes: MetaNode[] = [];
  for (const [i, id] of IDS.entries()) {
    const inner = createPeerTransport({
      clusterId: "meta",
      nodeId: names.get(id)!,
      host: "127.0.0.1",
      port: ports[i]!,
    });
    const transport = withFaults(inner, mulberry32(id));
    for (const [j, other] of IDS.entries())
      if (other !== id) transport.addPeer(names.get(other)!, `127.0.0.1:${ports[j]}`);
    const channels = peerChannels(transport);
    const host = new RaftHost({ channels, names, tickMs: TICK_MS });
    const rpc = createPeerRpc(channels, {
      onBug: (error) => {
        throw error;
      },
    });
    let calls = 0;
    const counted: PeerRpc = {
      ...rpc,
      call(...args) {
        calls++;
        return rpc.call(...args);
      },
    };
    const fs = new MemoryFileSystem();
    const suspects = new Set<number>();
    let engine = await RaftLogEngine.open(fs, "/raft");
    const placements: Placement[] = [];
    // The node's replica of the meta group over its log, serving and asking for timestamps.
    const replica = (founding = options.founding) => {
      const meta = new MetaGroup({
        ...options,
        founding,
        host,
        id,
        voters: IDS,
        log: engine.group(1),
        random: mulberry32(100 + id),
        tickMs: TICK_MS,
        disconnected: (peer) => suspects.has(peer) || transport.connected(names.get(peer)!) === false,
        confirmTimeoutMs: 1_000,
        onPlacement: (placement) => placements.push(placement),
      });
      serveTimestamps(rpc, meta);
      return {
        meta,
        timestamps: new TimestampClient({ meta, rpc: counted, nameOf: (peer) => names.get(peer), timeoutMs: 5_000 }),
      };
    };
    host.start();
    const node: MetaNode = {
      id,
      host,
      transport,
      rpc,
      ...replica(),
      placements,
      get timestampCalls() {
        return calls;
      },
      suspects,
      compactedIndex: () => engine.group(1).snapshot().index,
      async restartMeta(founding) {
        host.remove(META_GROUP);
        await engine.close();
        engine = await RaftLogEngine.open(fs, "/raft");
        Object.assign(node, replica(founding));
      },
      stopped: false,
      stop() {
        (node as { stopped: boolean }).stopped = true;
        rpc.close();
        host.stop();
        transport.close();
      },
    };
    nodes.push(node);
    running.push(node);
  }
  return nodes;
}

/**
 * Cuts `node` off from the others both ways without closing a connection (a firewall dropping
 * packets), and has every node's failure detector see it, as a server's would within seconds: a
 * quiet group's followers wake only when told their leader is down. Returns the heal.
 */
export function isolate(node: MetaNode, nodes: readonly MetaNode[]): () => void {
  const others = nodes.filter((other) => other !== node);
  node.transport.partition(
    others.map((other) => names.get(other.id)!),
    "both",
  );
  for (const other of others) {
    other.suspects.add(node.id);
    node.suspects.add(other.id);
  }
  return () => {
    node.transport.heal();
    for (const other of others) {
      other.suspects.delete(node.id);
      node.suspects.delete(other.id);
    }
  };
}

/** The node that leads the meta group and has taken office (it hands out timestamps). */
export function inOffice(nodes: readonly MetaNode[]): Promise<MetaNode> {
  return waitFor(
    async () => {
      for (const node of nodes) {
        if (!node.meta.driver.leads) continue;
        try {
          await node.meta.timestamps(1);
          return node;
        } catch {}
      }
      return undefined;
    },
    { what: "a meta leader handing out timestamps", timeoutMs: 10_000 },
  );
}

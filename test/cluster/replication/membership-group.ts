import type { MemberStatus } from "../../../src/cluster/gossip/gossiper.ts";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { Raft } from "../../../src/cluster/raft/raft.ts";
import type { MemberAddress, Message, NodeId } from "../../../src/cluster/raft/types.ts";
import { foundGroupIfNew, type InitialClusterState } from "../../../src/cluster/replication/bootstrap.ts";
import { replicatedClusterControl } from "../../../src/cluster/replication/cluster-admin.ts";
import { MemberDirectory } from "../../../src/cluster/replication/member-directory.ts";
import { raftIdOf } from "../../../src/cluster/replication/member-id.ts";
import type { PeerRpc } from "../../../src/cluster/replication/peer-rpc.ts";
import { RaftDriver } from "../../../src/cluster/replication/raft-driver.ts";
import { withDirectory } from "../../../src/cluster/replication/replicated-member.ts";
import { HomeKvError } from "../../../src/errors.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import type { ClusterControl } from "../../../src/server/cluster-control.ts";

export interface Node {
  name: string;
  id: NodeId;
  fs: MemoryFileSystem;
  raft: Raft;
  driver: RaftDriver<undefined>;
  directory: MemberDirectory;
  control: ClusterControl;
  /** Peers added to and removed from this member's transport, in order ("+n4", "-n2"). */
  transportChanges: string[];
  lines: string[];
}

/**
 * Members of one Raft group in one process, each with its own log on an in-memory file system,
 * its member directory and its cluster control, on real timers (2 ms ticks). Raft messages and
 * peer RPCs between running members go through on the next turn; a stopped member is unreachable
 * (an RPC to it rejects E_UNAVAILABLE, as the peer RPC layer's does), and can start again on its log.
 */
export class MembershipGroup {
  readonly nodes = new Map<string, Node>();
  private readonly handlers = new Map<
    string,
    Map<string, (from: string, request: Uint8Array) => Promise<Uint8Array>>
  >();
  private readonly stops = new Map<string, () => void>();
  private readonly files = new Map<string, MemoryFileSystem>();
  /** What every member's gossip says of the others, set by the test; autopilot reads it. */
  readonly gossip = new Map<string, MemberStatus>();

  constructor(
    readonly seeds: MemberAddress[],
    private readonly votersTarget = 3,
    /** Autopilot's --dead-server-after; undefined: off. */
    private readonly deadServerAfterMs?: number,
  ) {}

  async start(name: string, state: InitialClusterState = "new"): Promise<Node> {
    const fs = this.files.get(name) ?? new MemoryFileSystem();
    this.files.set(name, fs);
    const log = await DurableRaftLog.open(fs, "/raft");
    await foundGroupIfNew(log, this.seeds, state);
    const id = raftIdOf(name);
    const transportChanges: string[] = [];
    const lines: string[] = [];
    const directory = new MemberDirectory(this.seeds, (change) =>
      transportChanges.push(`${change.kind === "added" ? "+" : "-"}${change.member.name}`),
    );
    const raft = new Raft({ id, voters: [], storage: log, random: mulberry32(id % 2 ** 31) });
    const driver: RaftDriver<undefined> = new RaftDriver<undefined>({
      raft,
      storage: log,
      stateMachine: withDirectory({ apply: () => undefined, restore: () => {} }, directory),
      tickMs: 2,
      outbox: { send: (messages) => this.deliver(messages) },
    });
    this.handlers.set(name, new Map());
    const control = replicatedClusterControl(
      {
        clusterId: "test",
        self: name,
        selfId: id,
        driver,
        directory,
        rpc: this.rpcOf(name),
        grpcAddress: () => `grpc-of-${name}`,
        tickMs: 2,
        log: { info: (line) => lines.push(line), warn: (line) => lines.push(line) },
      },
      {
        votersTarget: this.votersTarget,
        transferTimeoutMs: 2_000,
        ...(this.deadServerAfterMs === undefined
          ? {}
          : {
              autopilot: {
                gossip: () => [...this.gossip].map(([nodeId, status]) => ({ nodeId, status })),
                deadServerAfterMs: this.deadServerAfterMs,
              },
            }),
      },
    );
    const node: Node = { name, id, fs, raft, driver, directory, control, transportChanges, lines };
    this.nodes.set(name, node);
    this.stops.set(name, () => {
      control.stop();
      driver.stop();
    });
    driver.start();
    return node;
  }

  /** Stops `name` as a crash would: its log stays, for a later start. */
  stop(name: string): void {
    this.stops.get(name)?.();
    this.stops.delete(name);
    this.nodes.delete(name);
    this.handlers.delete(name);
  }

  stopAll(): void {
    for (const name of [...this.nodes.keys()]) this.stop(name);
  }

  private deliver(messages: readonly Message[]): void {
    for (const message of messages) {
      setImmediate(() => {
        const to = [...this.nodes.values()].find((node) => node.id === message.to);
        const fromRunning = [...this.nodes.values()].some((node) => node.id === message.from);
        if (to && fromRunning) to.driver.receive(message);
      });
    }
  }

  private rpcOf(self: string): Pick<PeerRpc, "call" | "handle"> {
    return {
      call: async (to, method, request) => {
        await new Promise((resolve) => setImmediate(resolve));
        const handler = this.handlers.get(to)?.get(method);
        if (handler === undefined || !this.nodes.has(self))
          throw new HomeKvError("E_UNAVAILABLE", `${to} did not answer ${method}`);
        return handler(self, request.slice());
      },
      handle: (method, handler) => {
        this.handlers.get(self)!.set(method, handler);
      },
    };
  }
}

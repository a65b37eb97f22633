import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import type { Raft } from "../../../src/cluster/raft/raft.ts";
import { foundGroupIfNew } from "../../../src/cluster/replication/bootstrap.ts";
import { raftIdOf } from "../../../src/cluster/replication/member-id.ts";
import { startReplicatedMember } from "../../../src/cluster/replication/replicated-member.ts";
import type { SnapshotStreamLimits } from "../../../src/cluster/replication/snapshot-sender.ts";
import { type FaultyTransport, withFaults } from "../../../src/cluster/transport/fault-injection.ts";
import { createPeerTransport } from "../../../src/cluster/transport/peer-transport.ts";
import { realFileSystem } from "../../../src/io/fs/real-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import type { Database, StoreSettings } from "../../../src/storage/database.ts";
import { freePorts } from "../../helpers/free-ports.ts";
import { scratchDir } from "../../helpers/processes.ts";
import { waitFor } from "../../helpers/wait.ts";

/**
 * Members of one Raft group in this process, each with its own peer transport on a loopback port
 * (real TCP, authenticated with a cluster token, behind the fault-injecting wrapper), its Raft log
 * and checkpoints in a directory of its own, its store and database: the pieces `homekv serve`
 * runs, put together without the server. A member can be stopped and started again on its files.
 */
export interface TcpMember {
  id: number;
  name: string;
  dir: string;
  raft: Raft;
  db: Database;
  transport: FaultyTransport;
  /** Lines the member logged. */
  lines: string[];
  stop(): Promise<void>;
}

export interface TcpGroupOptions {
  size?: number;
  settings?: StoreSettings;
  checkpointLogBytes?: number;
  checkpointLogEntries?: number;
  logTailEntries?: number;
  snapshotStream?: Partial<SnapshotStreamLimits>;
  /** How long a linearizable read (and a Checkpoint or Backup call's catch-up) waits; default 5 s. */
  readTimeoutMs?: number;
}

export interface TcpGroup {
  members: TcpMember[];
  /** Starts member `id` (again) on its directory and port; it replaces the entry in `members`. */
  start(id: number): Promise<TcpMember>;
  /** One leader that every running member follows. */
  leader(): Promise<TcpMember>;
  /** Cuts `member` off from every other, both ways, at the transports. */
  isolate(member: TcpMember): void;
  heal(): void;
  /** Stops every member and removes the files. */
  close(): Promise<void>;
}

export async function startTcpGroup(options: TcpGroupOptions = {}): Promise<TcpGroup> {
  const root = scratchDir("homekv-raft-tcp-");
  const size = options.size ?? 3;
  // Peer ports fixed up front: the founding entries name every member's address.
  const ports = freePorts(size);
  const seeds = ports.map((port, i) => ({ name: `n${i + 1}`, peerAddress: `127.0.0.1:${port}` }));
  const ids = seeds.map((seed) => raftIdOf(seed.name));
  const names = new Map(ids.map((id, i) => [id, seeds[i]!.name]));
  const members: TcpMember[] = [];
  const stopped = new Set<TcpMember>();
  const running = () => members.filter((m) => !stopped.has(m));

  const start = async (id: number): Promise<TcpMember> => {
    const name = names.get(id)!;
    const dir = `${root.path}/${name}`;
    const transport = withFaults(
      createPeerTransport({
        clusterId: "test",
        nodeId: name,
        host: "127.0.0.1",
        port: ports[ids.indexOf(id)]!,
        token: "secret",
        backoffMaxMs: 200,
      }),
      mulberry32(id),
    );
    for (const seed of seeds) if (seed.name !== name) transport.addPeer(seed.name, seed.peerAddress);
    const log = await DurableRaftLog.open(realFileSystem, `${dir}/raft`);
    await foundGroupIfNew(log, seeds, "new");
    const lines: string[] = [];
    const { db, raft } = await startReplicatedMember({
      self: name,
      seeds,
      raftLog: log,
      transport,
      fs: realFileSystem,
      checkpointDir: `${dir}/checkpoints`,
      dataDir: dir,
      checkpointLogBytes: options.checkpointLogBytes ?? 256 << 20,
      checkpointLogEntries: options.checkpointLogEntries ?? 100_000,
      logTailEntries: options.logTailEntries ?? 5_000,
      snapshotStream: options.snapshotStream,
      settings: options.settings ?? { historyRevisions: 1_000 },
      tickMs: 10,
      random: mulberry32(100 + id),
      readTimeoutMs: options.readTimeoutMs ?? 5_000,
      log: {
        info: (line) => lines.push(line),
        warn: (line) => lines.push(line),
        error: (line, error) => lines.push(`${line} ${error}`),
      },
    });
    const member: TcpMember = {
      id,
      name,
      dir,
      raft,
      db,
      transport,
      lines,
      async stop() {
        if (stopped.has(member)) return;
        stopped.add(member);
        await db.close();
        transport.close();
        await log.close();
      },
    };
    const at = members.findIndex((m) => m.id === id);
    if (at === -1) members.push(member);
    else members[at] = member;
    return member;
  };

  for (const id of ids) await start(id);
  return {
    members,
    start,
    leader: () =>
      waitFor(
        () => {
          const up = running();
          return up.find((m) => m.raft.role === "leader" && up.every((o) => o.raft.leader === m.id));
        },
        {
          what: "one leader that every running member follows",
          timeoutMs: 15_000,
          detail: () =>
            running()
              .map((m) => `${m.name}: ${m.raft.role}, leader ${m.raft.leader}`)
              .join("; "),
        },
      ),
    isolate(member) {
      const others = members.filter((m) => m !== member);
      member.transport.partition(
        others.map((m) => m.name),
        "both",
      );
      for (const m of others) m.transport.partition([member.name], "both");
    },
    heal() {
      for (const m of members) m.transport.heal();
    },
    async close() {
      for (const member of members) await member.stop();
      root.cleanup();
    },
  };
}

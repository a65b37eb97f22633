import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { Raft } from "../../../src/cluster/raft/raft.ts";
import type { Message, NodeId } from "../../../src/cluster/raft/types.ts";
import { peerChannels } from "../../../src/cluster/replication/peer-channels.ts";
import { createPeerRpc } from "../../../src/cluster/replication/peer-rpc.ts";
import {
  replicatedDatabase,
  type StoreReplica,
  storeReplica,
  storeStateMachine,
} from "../../../src/cluster/replication/raft-commit-log.ts";
import { RaftDriver, type ReplicatedStateMachine } from "../../../src/cluster/replication/raft-driver.ts";
import type { PeerTransport } from "../../../src/cluster/transport/types.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import {
  createObservedStore,
  type Database,
  type ObservedStore,
  type StoreSettings,
} from "../../../src/storage/database.ts";
import type { ApplyResult } from "../../../src/storage/ops.ts";
import { waitFor } from "../../helpers/wait.ts";

export interface GroupMember<R> {
  id: NodeId;
  fs: MemoryFileSystem;
  log: DurableRaftLog;
  raft: Raft;
  driver: RaftDriver<R>;
  /** Every message this member handed to its outbox. */
  sent: Message[];
  fatal: unknown[];
}

export interface LocalGroup<R> {
  members: GroupMember<R>[];
  /** `from>to` pairs whose messages are dropped. */
  cut: Set<string>;
  /** Cuts `id` off from every other member, both ways. */
  isolate(id: NodeId): void;
  leader(): Promise<GroupMember<R>>;
  stop(): void;
}

/**
 * A Raft group in one process: a driver per member on real timers (2 ms ticks), a durable log each
 * on its own in-memory file system, messages delivered on the next turn unless their pair is cut.
 */
export async function startLocalGroup<R>(
  stateMachine: (id: NodeId, log: DurableRaftLog) => ReplicatedStateMachine<R>,
  size = 3,
): Promise<LocalGroup<R>> {
  const cut = new Set<string>();
  const ids = Array.from({ length: size }, (_, i) => i + 1);
  const members: GroupMember<R>[] = [];
  for (const id of ids) {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, "/raft");
    const raft = new Raft({ id, voters: ids, storage: log, random: mulberry32(id) });
    const sent: Message[] = [];
    const fatal: unknown[] = [];
    const driver = new RaftDriver<R>({
      raft,
      storage: log,
      stateMachine: stateMachine(id, log),
      tickMs: 2,
      onFatal: (error) => fatal.push(error),
      outbox: {
        send(messages) {
          for (const m of messages) {
            sent.push(m);
            if (!cut.has(`${m.from}>${m.to}`)) setImmediate(() => members[m.to - 1]!.driver.receive(m));
          }
        },
      },
    });
    members.push({ id, fs, log, raft, driver, sent, fatal });
  }
  for (const member of members) member.driver.start();
  return {
    members,
    cut,
    isolate(id) {
      for (const other of ids) if (other !== id) cut.add(`${id}>${other}`).add(`${other}>${id}`);
    },
    leader: () =>
      waitFor(() => members.find((m) => m.raft.role === "leader" && members.every((o) => o.raft.leader === m.id)), {
        what: "one leader followed by every member",
        detail: () =>
          members.map((m) => `${m.id}: ${m.raft.role} term ${m.raft.term} leader ${m.raft.leader}`).join("; "),
      }),
    stop() {
      for (const member of members) member.driver.stop();
    },
  };
}

/**
 * Peer transports in one process for members named by their ids: a payload arrives on the next
 * turn unless its pair is in `cut` (the members' calls over peer RPC are cut with their messages).
 */
function memoryTransports(ids: readonly NodeId[], cut: ReadonlySet<string>): Map<NodeId, PeerTransport> {
  const receivers = new Map<string, (from: string, payload: Uint8Array) => void>();
  const transport = (id: NodeId): PeerTransport => ({
    nodeId: String(id),
    address: `memory:${id}`,
    addPeer() {},
    removePeer() {},
    send(to, payload) {
      if (!cut.has(`${id}>${to}`)) setImmediate(() => receivers.get(to)?.(String(id), payload));
    },
    onMessage(handler) {
      receivers.set(String(id), handler);
    },
    // No connections to lose: a cut shows as payloads not delivered.
    connected: () => true,
    stats: () => ({
      peers: {},
      openConnections: 0,
      unknownPeerDrops: 0,
      refused: 0,
      refusedByPeers: 0,
      corruptFrames: 0,
      oversizedFrames: 0,
    }),
    close() {
      receivers.delete(String(id));
    },
  });
  return new Map(ids.map((id) => [id, transport(id)]));
}

/**
 * A local group whose members each run the store and a replicated database over the group's log;
 * followers forward writes to the leader over peer RPC on in-process transports.
 */
export async function startReplicatedLocalGroup(
  settings: StoreSettings,
  options: { forwardTimeoutMs?: number } = {},
): Promise<{ group: LocalGroup<ApplyResult | undefined>; databases: Map<NodeId, Database> }> {
  const observed = new Map<NodeId, ObservedStore>();
  const replicas = new Map<NodeId, StoreReplica>();
  const group = await startLocalGroup<ApplyResult | undefined>((id) => {
    const store = createObservedStore(settings);
    observed.set(id, store);
    const replica = storeReplica(id, options.forwardTimeoutMs ?? 5_000);
    replicas.set(id, replica);
    return storeStateMachine(store.store, replica);
  });
  const transports = memoryTransports(
    group.members.map((m) => m.id),
    group.cut,
  );
  const databases = new Map(
    group.members.map((member) => [
      member.id,
      replicatedDatabase({
        observed: observed.get(member.id)!,
        driver: member.driver,
        replica: replicas.get(member.id)!,
        rpc: createPeerRpc(peerChannels(transports.get(member.id)!), { onBug: (error) => console.error(error) }),
        nameOf: (id) => String(id),
        // In-process transports have no connections to lose: a cut shows as calls not answered.
        reachable: () => true,
        readTimeoutMs: 5_000,
        forwardTimeoutMs: options.forwardTimeoutMs ?? 5_000,
      }),
    ]),
  );
  return { group, databases };
}

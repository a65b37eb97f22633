import type { FileSystem } from "../../io/fs/file-system.ts";
import { createBackups } from "../../storage/backup/backup-dir.ts";
import type { ReplicaState } from "../../storage/checkpoint/checkpoint-format.ts";
import type { Database, StoreSettings } from "../../storage/database.ts";
import type { ApplyResult } from "../../storage/ops.ts";
import { createReplaceableObservedStore } from "../../storage/replaceable-observed-store.ts";
import type { Timers } from "../../timers.ts";
import { Raft } from "../raft/raft.ts";
import type { PersistentRaftLog } from "../raft/storage.ts";
import type { MemberAddress, NodeId } from "../raft/types.ts";
import type { PeerTransport } from "../transport/types.ts";
import { checkpointStreams } from "./checkpoint-streams.ts";
import { catchUpForBackup, loadMemberCheckpoint, MemberCheckpoints, positionIn } from "./member-checkpoints.ts";
import { MemberDirectory } from "./member-directory.ts";
import { raftIdOf } from "./member-id.ts";
import { peerChannels } from "./peer-channels.ts";
import { PeerLink } from "./peer-link.ts";
import { createPeerRpc, type PeerRpc } from "./peer-rpc.ts";
import { replicatedDatabase, storeReplica, storeStateMachine } from "./raft-commit-log.ts";
import { RaftDriver, type ReplicatedStateMachine } from "./raft-driver.ts";
import type { SnapshotStreamLimits } from "./snapshot-sender.ts";

/** Raft group id of the store (one group for the whole keyspace; partitions will have their own). */
const STORE_GROUP = 1;
/** A write forwarded to the leader is answered within this long, or its outcome is unknown. */
const FORWARD_TIMEOUT_MS = 5_000;
const CHECKPOINT_SLICE_KEYS = 4_096;

export interface ReplicatedMemberOptions {
  /** This member's name; its Raft id is derived from it (member-id.ts). */
  self: string;
  /**
   * Where members can be reached before the log says (--initial-cluster). The group's members
   * themselves come from its log: founded (bootstrap.ts) or learned from the leader.
   */
  seeds: readonly MemberAddress[];
  /** The member's Raft log: a DurableRaftLog, or its group's log in a RaftLogEngine. */
  raftLog: PersistentRaftLog;
  transport: PeerTransport;
  /** Where the member's checkpoints are kept (and a leader's snapshot is received). */
  fs: FileSystem;
  checkpointDir: string;
  /** The member's data directory, which a backup must be outside of; without it, Backup is refused. */
  dataDir?: string;
  /** A checkpoint starts once this many bytes of commands were applied since the last. */
  checkpointLogBytes: number;
  /** Or after this many entries (etcd's --snapshot-count). */
  checkpointLogEntries: number;
  /** Entries kept in the Raft log behind the checkpoint it is compacted to. */
  logTailEntries: number;
  snapshotStream?: Partial<SnapshotStreamLimits>;
  /** The store's history, watch and TTL settings. */
  settings: StoreSettings;
  tickMs: number;
  /** Drives the election timeouts: seeded from the process's randomness in a server. */
  random: () => number;
  /** How long a linearizable read waits for the leader's confirmation before UNAVAILABLE. */
  readTimeoutMs: number;
  log: { info(line: string): void; warn(line: string): void; error(line: string, error: unknown): void };
  /** Runs when the database closes, once the member has stopped (the transport, the log, a lock). */
  onClose?: () => Promise<void>;
  /** Default: the real ones (src/timers.ts). */
  timers?: Timers;
}

export interface ReplicatedMember {
  db: Database;
  raft: Raft;
  driver: RaftDriver<ApplyResult | undefined>;
  directory: MemberDirectory;
  rpc: PeerRpc;
}

/**
 * One member of a replicated store, running: its store (loaded from its newest checkpoint) with its
 * observers, the Raft core over its log, the member directory (which the transport follows: a
 * member added is dialled, a member removed let go), the group's messages, snapshot streams and the
 * members' calls over the peer transport, the driver loop, and the database on top.
 */
export async function startReplicatedMember(options: ReplicatedMemberOptions): Promise<ReplicatedMember> {
  const { log, transport, self, fs, checkpointDir, raftLog } = options;
  const observed = createReplaceableObservedStore(options.settings, (line) => log.warn(line));
  const loaded = await loadMemberCheckpoint(fs, checkpointDir, raftLog.snapshot().index, observed.store);
  const directory = new MemberDirectory(options.seeds, (change) => {
    if (change.member.name === self) {
      if (change.kind === "removed") log.warn(`this member (${self}) was removed from the group`);
      return;
    }
    if (change.kind === "added") transport.addPeer(change.member.name, change.member.peerAddress);
    else transport.removePeer(change.member.name);
  });
  const names = directory.names;
  const id = raftIdOf(self);
  // The group's first members are in its log (bootstrap.ts), not given here.
  const raft = new Raft({ id, voters: [], storage: raftLog, random: options.random });
  const channels = peerChannels(transport);
  const rpc = createPeerRpc(channels, {
    onBug: (error) => log.error("internal error while answering a member:", error),
    log: (line) => log.warn(line),
    timers: options.timers,
    random: options.random,
  });
  const replica = storeReplica(id, FORWARD_TIMEOUT_MS, options.timers, options.random);
  // What the state machine keeps beside the store travels with it in checkpoints and snapshots.
  const beside = {
    capture: () => ({
      members: directory.members().map(([, member]) => member),
      requestIds: replica.requestIds.entries(),
    }),
    restore(state: ReplicaState) {
      directory.restore(state.members);
      replica.requestIds.replaceWith(state.requestIds);
    },
  };
  if (loaded) beside.restore(loaded.replica);
  const checkpoints = new MemberCheckpoints(
    {
      fs,
      dir: checkpointDir,
      observed,
      raftLog,
      positionAt: positionIn(raft),
      replica: beside,
      appliedIndex: loaded?.index ?? raftLog.snapshot().index,
      checkpointLogBytes: options.checkpointLogBytes,
      checkpointLogEntries: options.checkpointLogEntries,
      tailEntries: options.logTailEntries,
      sliceKeysMax: CHECKPOINT_SLICE_KEYS,
      log: (line) => log.info(line),
    },
    loaded,
  );
  if (loaded) log.info(`loaded the checkpoint at index ${loaded.index} (revision ${loaded.revision})`);
  let driver: RaftDriver<ApplyResult | undefined> | undefined;
  const linkUp = (id: NodeId) => {
    const name = names.get(id);
    return name === undefined ? undefined : transport.connected(name);
  };
  // Reachable: a forward can go now. Disconnected: the transport knows the link is down (a member
  // not known by name, or not yet dialled, is neither: a new learner must not forget a live leader).
  const reachable = (id: NodeId) => linkUp(id) === true;
  const disconnected = (id: NodeId) => linkUp(id) === false;
  const send = (to: NodeId, payload: Uint8Array) => {
    const name = names.get(to);
    if (name !== undefined) transport.send(name, payload);
  };
  const streams = checkpointStreams({
    group: STORE_GROUP,
    fs,
    dir: checkpointDir,
    send,
    driver: () => driver,
    limits: options.snapshotStream,
    log: (line) => log.warn(line),
    timers: options.timers,
  });
  const link = new PeerLink({ channels, names, log: (line) => log.warn(line), timers: options.timers });
  const outbox = link.join(STORE_GROUP, {
    receive: (message) => driver?.receive(message),
    snapshots: streams,
  });
  driver = new RaftDriver({
    raft,
    storage: raftLog,
    stateMachine: withDirectory(storeStateMachine(observed.store, replica, checkpoints), directory),
    outbox,
    tickMs: options.tickMs,
    disconnected,
    timers: options.timers,
    nameOf: (id) => names.get(id) ?? String(id),
    onFatal: (error) => log.error("the Raft log failed; this member stops taking part:", error),
  });
  // A backup is the store at a revision every write acknowledged before the call is in, copied as a
  // single server's checkpoint into a new data directory (backup/backup-dir.ts).
  const backups =
    options.dataDir === undefined
      ? undefined
      : createBackups({
          fs,
          dataDir: options.dataDir,
          engine: "memory",
          log: (line) => log.info(line),
          async write(into) {
            await catchUpForBackup(() => driver!.readBarrier(options.readTimeoutMs));
            return checkpoints.backup(into);
          },
        });
  const db = replicatedDatabase({
    observed,
    driver,
    replica,
    rpc,
    nameOf: (id) => names.get(id),
    reachable,
    readTimeoutMs: options.readTimeoutMs,
    forwardTimeoutMs: FORWARD_TIMEOUT_MS,
    log: (line) => log.info(line),
    checkpoints,
    ...(backups ? { backup: (dir: string) => backups.backup(dir) } : {}),
    async onClose() {
      await backups?.settled();
      streams.close();
      await checkpoints.close();
      await options.onClose?.();
    },
    timers: options.timers,
  });
  driver.start();
  return { db, raft, driver, directory, rpc };
}

/** `machine`, with the directory following the configuration changes applied (its replicated state). */
export function withDirectory<R>(
  machine: ReplicatedStateMachine<R>,
  directory: MemberDirectory,
): ReplicatedStateMachine<R> {
  return {
    apply(entry) {
      if (entry.conf) directory.apply(entry.conf);
      return machine.apply(entry);
    },
    restore: (snapshot) => machine.restore(snapshot),
  };
}

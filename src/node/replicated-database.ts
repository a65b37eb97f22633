import type { Membership } from "../cluster/membership.ts";
import { isMember } from "../cluster/raft/configuration.ts";
import { DurableRaftLog } from "../cluster/raft/durable-log.ts";
import type { MemberAddress } from "../cluster/raft/types.ts";
import { foundGroupIfNew } from "../cluster/replication/bootstrap.ts";
import { replicatedClusterControl } from "../cluster/replication/cluster-admin.ts";
import { CHANGE_METHOD, encodeChangeRequest } from "../cluster/replication/cluster-rpc-format.ts";
import { raftIdOf } from "../cluster/replication/member-id.ts";
import { startReplicatedMember } from "../cluster/replication/replicated-member.ts";
import {
  refuseFoundingRestoredCluster,
  restoredDirCheck,
  restoredLogCheck,
} from "../cluster/replication/restore-member.ts";
import { HomeKvError } from "../errors.ts";
import { realFileSystem } from "../io/fs/real-fs.ts";
import { mulberry32 } from "../random.ts";
import type { ClusterControl } from "../server/cluster-control.ts";
import { claimDataDirEngine } from "../storage/data-dir-engine.ts";
import { lockDataDir, processIsAlive } from "../storage/data-dir-lock.ts";
import type { Database } from "../storage/database.ts";
import { refuseOtherKindsData } from "./data-dir-kind.ts";
import { findGroup, keepJoining } from "./gossip-join.ts";
import { openNodeTransport } from "./node-transport.ts";
import type { RaftConfig, ServeConfig } from "./serve-config.ts";
import type { NodeLog } from "./start-node.ts";

/** A linearizable read waits this long for the leader's confirmation, then UNAVAILABLE. */
const READ_TIMEOUT_MS = 5_000;
/** A leadership transfer (`homekv cluster transfer-leader`) is given this long. */
const TRANSFER_TIMEOUT_MS = 10_000;

/** A replicated member's store, and its answers to the cluster RPCs. */
export interface ReplicatedNode {
  db: Database;
  cluster: ClusterControl;
  /** Where the gRPC server listens, once bound: the others learn it from this member's status. */
  serving(grpcAddress: string): void;
}

/**
 * The store of a member of a replicated cluster (`--initial-cluster` or `--bootstrap-expect`): the Raft log in
 * `<data dir>/raft` is the log (it replaces the WAL), the store is rebuilt from it at start, peers
 * talk over the peer transport on `--peer-port`. A member's Raft id is a hash of its name
 * (member-id.ts); the group's members are in its log: a first start with --initial-cluster-state
 * new writes the founding members there (bootstrap.ts), one with "existing" waits to be added.
 * With --bootstrap-expect, gossip (up before this) settles which of the two a first start is
 * (gossip-join.ts), a joiner asks the group to add it, and a member says so in gossip.
 *
 *   dir/LOCK                      pid of the server using it
 *   dir/ENGINE                    the engine that writes it (src/storage/data-dir-engine.ts)
 *   dir/raft/                     the Raft log (src/cluster/raft/durable-log-format.ts)
 *   dir/checkpoints/<index>.rckpt the store at a Raft index: the log's snapshot and the newer ones
 *                                 (src/storage/checkpoint/checkpoint-format.ts)
 */
export async function openReplicatedDatabase(
  config: ServeConfig,
  raftConfig: RaftConfig,
  log: NodeLog,
  gossip: () => Membership | undefined,
): Promise<ReplicatedNode> {
  if (config.storage.kind !== "disk")
    throw new HomeKvError("E_CONFIG", "a replicated member keeps its Raft log on disk: give it --data-dir");
  const { dir } = config.storage;
  await realFileSystem.mkdirp(dir);
  const lock = await lockDataDir({ fs: realFileSystem, dir, pid: process.pid, isAlive: processIsAlive });
  const release = async (raftLog?: DurableRaftLog) => {
    try {
      await raftLog?.close();
    } finally {
      await lock.release();
    }
  };
  let raftLog: DurableRaftLog | undefined;
  let transport: ReturnType<typeof openNodeTransport>;
  let seeds: MemberAddress[];
  try {
    // What would refuse this directory is checked before anything is written to it (the engine's
    // name, a log's first segment), so that a refused start leaves it as it was.
    await refuseOtherKindsData(realFileSystem, dir, "replicated");
    await restoredDirCheck(realFileSystem, dir, { name: config.cluster.nodeId, clusterId: config.cluster.clusterId });
    await refuseFoundingRestoredCluster(realFileSystem, dir, config.cluster.clusterId, raftConfig.founding);
    await claimDataDirEngine(realFileSystem, dir, config.storage.engine.kind);
    raftLog = await DurableRaftLog.open(realFileSystem, `${dir}/raft`, (line) => log.warn(line));
    restoredLogCheck(config.cluster.clusterId, raftLog.lastIndex(), dir);
    const founding = await findGroup(config, raftConfig, raftLog, gossip, log);
    seeds = founding.seeds;
    if (await foundGroupIfNew(raftLog, seeds, founding.initialState))
      log.info(`founded the group: ${seeds.map((m) => m.name).join(", ")}`);
    transport = openNodeTransport(config, raftConfig, seeds, log);
  } catch (error) {
    // The peer port taken, the log damaged: let go of what was opened, then fail the start.
    await release(raftLog);
    throw error;
  }
  const self = config.cluster.nodeId;
  let grpcAddress = "";
  // Assigned right below; the member's onClose runs only once the database closes.
  let cluster: ReturnType<typeof replicatedClusterControl> | undefined;
  let joining: { stop(): void } | undefined;
  let member: Awaited<ReturnType<typeof startReplicatedMember>>;
  try {
    member = await startReplicatedMember({
      self,
      seeds,
      raftLog,
      transport,
      fs: realFileSystem,
      checkpointDir: `${dir}/checkpoints`,
      dataDir: dir,
      checkpointLogBytes: config.storage.checkpointWalBytes,
      checkpointLogEntries: raftConfig.checkpointEntries,
      logTailEntries: raftConfig.logTailEntries,
      settings: {
        engine: config.storage.engine,
        historyRevisions: config.history.revisions,
        watch: { onBug: (error) => log.error("internal error in a watcher:", error) },
      },
      tickMs: raftConfig.tickMs,
      random: mulberry32(Math.floor(Math.random() * 2 ** 32)),
      readTimeoutMs: READ_TIMEOUT_MS,
      log,
      async onClose() {
        cluster?.stop();
        joining?.stop();
        transport.close();
        await release(raftLog);
      },
    });
  } catch (error) {
    // A checkpoint damaged or missing: let go of what was opened, then fail the start.
    transport.close();
    await release(raftLog);
    throw error;
  }
  cluster = replicatedClusterControl(
    {
      clusterId: config.cluster.clusterId,
      self,
      selfId: raftIdOf(self),
      driver: member.driver,
      directory: member.directory,
      rpc: member.rpc,
      grpcAddress: () => grpcAddress,
      tickMs: raftConfig.tickMs,
      log,
    },
    {
      votersTarget: raftConfig.voters,
      transferTimeoutMs: TRANSFER_TIMEOUT_MS,
      ...(raftConfig.deadServerAfterMs === undefined
        ? {}
        : { autopilot: { gossip: () => gossip()?.members(), deadServerAfterMs: raftConfig.deadServerAfterMs } }),
    },
  );
  const membership = gossip();
  joining =
    raftConfig.founding.kind === "gossip" && membership
      ? keepJoining(
          membership,
          {
            self,
            isMember: () => isMember(member.driver.groupStatus().conf, raftIdOf(self)),
            addPeer: (name, address) => transport.addPeer(name, address),
            askToAdd: async (to, timeoutMs) => {
              const request = encodeChangeRequest({ op: "add", name: self, peerAddress: transport.address });
              await member.rpc.call(to, CHANGE_METHOD, request, timeoutMs);
            },
          },
          config.cluster.gossip!.intervalMs,
          log,
        )
      : undefined;
  const { conf } = member.driver.groupStatus();
  log.info(
    conf.voters.length === 0
      ? raftConfig.founding.kind === "gossip"
        ? `member ${self} asks the cluster to add it: peers on ${transport.address}`
        : `member ${self} waits to be added to the cluster (homekv cluster add ${self}=${transport.address}): peers on ${transport.address}`
      : `member ${self} of a replicated cluster of ${conf.voters.length} voters (${conf.voters.map((id) => member.directory.nameOf(id) ?? id).join(", ")}): peers on ${transport.address}`,
  );
  return {
    db: member.db,
    cluster,
    serving(address) {
      grpcAddress = address;
    },
  };
}

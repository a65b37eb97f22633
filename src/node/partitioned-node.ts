import type { Membership } from "../cluster/membership.ts";
import { META_GROUP } from "../cluster/meta/meta-group.ts";
import { askNodeChange } from "../cluster/meta/node-changes.ts";
import { RaftLogEngine } from "../cluster/raft/group-log-engine.ts";
import type { RaftStorage } from "../cluster/raft/storage.ts";
import type { MemberAddress } from "../cluster/raft/types.ts";
import { foundersInLog, foundGroupIfNew, type InitialClusterState } from "../cluster/replication/bootstrap.ts";
import { HomeKvError } from "../errors.ts";
import { realFileSystem } from "../io/fs/real-fs.ts";
import { mulberry32 } from "../random.ts";
import type { RingView } from "../server/ring.ts";
import type { Scans } from "../server/scan-cursors.ts";
import { createBackups } from "../storage/backup/backup-dir.ts";
import { claimDataDirEngine } from "../storage/data-dir-engine.ts";
import { lockDataDir, processIsAlive } from "../storage/data-dir-lock.ts";
import type { Database } from "../storage/database.ts";
import { REQUEST_IDS_REMEMBERED } from "../storage/request-ids.ts";
import { refuseOtherKindsData } from "./data-dir-kind.ts";
import { findGroup, keepJoining } from "./gossip-join.ts";
import { openNodeTransport } from "./node-transport.ts";
import { writePartitionedBackup } from "./partitioned-backup.ts";
import { partitionedClusterControl } from "./partitioned-cluster-control.ts";
import { startPartitionedMember } from "./partitioned-member.ts";
import { partitionedScans } from "./partitioned-scans.ts";
import type { ReplicatedNode } from "./replicated-database.ts";
import type { PartitionsConfig, RaftConfig, ServeConfig } from "./serve-config.ts";
import type { NodeLog } from "./start-node.ts";

/**
 * A partition checkpoints after its share of --checkpoint-wal-bytes and --checkpoint-raft-entries,
 * but not after less than these: a checkpoint costs a file and a pass over the partition's keys.
 */
const PARTITION_CHECKPOINT_BYTES_MIN = 1 << 20;
const PARTITION_CHECKPOINT_ENTRIES_MIN = 16;
/** Request ids a partition remembers at least, however many partitions share REQUEST_IDS_REMEMBERED. */
const REQUEST_IDS_PER_PARTITION_MIN = 1_000;

/**
 * A node of a partitioned cluster (`--partitions P`, docs/internals/partitions.md): one RaftHost
 * running the meta group (group 1: the cluster's shape, nodes and placement, and the timestamp
 * oracle) and this node's replicas of the partitions (group p + 2, PartitionReplicas), every
 * group's log in one RaftLogEngine under `<data dir>/groups`, one peer transport. Every node of
 * the cluster is a voter of the meta group; its first leader creates the cluster and places the
 * partitions. A node added later (`homekv cluster add`, started with --initial-cluster-state
 * existing) joins the meta group, and the placement moves about 1/N of the replicas to it; a node
 * removed has its replicas moved to the others. The running node is partitioned-member.ts (the
 * simulation of test/cluster/partitioned-sim/ runs the same); here are its data directory, its
 * transport, joining through gossip, and what the gRPC server asks of it.
 *
 * Each replica checkpoints its partition every so many entries or bytes (the --checkpoint-raft-entries
 * and --checkpoint-wal-bytes of a replicated member, shared out among the partitions), and its log
 * is compacted to the checkpoint; a replica far behind is sent its leader's. A write with a request id is decided in the id's own partition, once.
 *
 *   dir/LOCK           pid of the server using it
 *   dir/ENGINE         the engine (memory: a partition's store is rebuilt from its checkpoint and log)
 *   dir/groups/        every group's Raft log (src/cluster/raft/group-log-format.ts)
 *   dir/partitions/P/  the checkpoints of this node's replica of partition P (member-checkpoints.ts)
 */
export async function openPartitionedNode(
  config: ServeConfig,
  raftConfig: RaftConfig,
  shape: PartitionsConfig,
  log: NodeLog,
  gossip: () => Membership | undefined,
): Promise<{ db: Database; ring(): RingView; scans: Scans; replicated: Omit<ReplicatedNode, "db"> }> {
  if (config.storage.kind !== "disk")
    throw new HomeKvError("E_CONFIG", "a partitioned cluster keeps its Raft logs on disk: give it --data-dir");
  if (config.storage.engine.kind !== "memory")
    throw new HomeKvError("E_CONFIG", "partitions keep their stores in memory for now: --engine memory");
  const { dir } = config.storage;
  await realFileSystem.mkdirp(dir);
  const lock = await lockDataDir({ fs: realFileSystem, dir, pid: process.pid, isAlive: processIsAlive });
  let engine: RaftLogEngine | undefined;
  let founders: Awaited<ReturnType<typeof findGroup>>;
  try {
    // Before anything is written to it: a refused start leaves the directory as it was.
    await refuseOtherKindsData(realFileSystem, dir, "partitioned");
    await claimDataDirEngine(realFileSystem, dir, "memory");
    engine = await RaftLogEngine.open(realFileSystem, `${dir}/groups`, (line) => log.warn(line));
    // The founding nodes (--initial-cluster, or those gossip found with --bootstrap-expect) begin
    // the meta group's log with themselves as voters, the same entries on each; a node joining
    // waits, a member of nothing, to be added. Past the first start, the log says who is.
    founders = await findGroup(config, raftConfig, engine.group(META_GROUP), gossip, log);
    await foundGroupIfNew(engine.group(META_GROUP), founders.seeds, founders.initialState);
    if (raftConfig.founding.kind === "gossip")
      founders = foundedThroughGossip(engine.group(META_GROUP), founders, config);
  } catch (error) {
    await engine?.close().catch(() => {});
    await lock.release();
    throw error;
  }
  const { seeds: members, initialState } = founders;
  const self = config.cluster.nodeId;
  const transport = openNodeTransport(config, raftConfig, members, log);
  const member = startPartitionedMember({
    self,
    members,
    initialState,
    engine,
    transport,
    shape,
    tickMs: raftConfig.tickMs,
    checkpoints: {
      fs: realFileSystem,
      dir: `${dir}/partitions`,
      // A partition's share of what one replicated member's log may hold: the logs of all of them
      // together are then held to about as much.
      logBytes: share(config.storage.checkpointWalBytes, shape.count, PARTITION_CHECKPOINT_BYTES_MIN),
      logEntries: share(raftConfig.checkpointEntries, shape.count, PARTITION_CHECKPOINT_ENTRIES_MIN),
      tailEntries: share(raftConfig.logTailEntries, shape.count, 0),
    },
    // Ids hash to their partitions: all of them together remember about what one server does.
    requestIdsRemembered: share(REQUEST_IDS_REMEMBERED, shape.count, REQUEST_IDS_PER_PARTITION_MIN),
    random: mulberry32(Math.floor(Math.random() * 2 ** 32)),
    log,
  });
  const { meta, rpc } = member;
  // Found through gossip: until a member, ask the nodes gossip shows to put this one in the cluster.
  const membership = gossip();
  const joining =
    raftConfig.founding.kind === "gossip" && membership
      ? keepJoining(
          membership,
          {
            self,
            isMember: member.inMetaGroup,
            addPeer: (name, address) => transport.addPeer(name, address),
            askToAdd: (to, timeoutMs) =>
              askNodeChange(
                rpc,
                to,
                { type: "putNode", node: { name: self, peerAddress: transport.address } },
                timeoutMs,
              ),
          },
          config.cluster.gossip!.intervalMs,
          log,
        )
      : undefined;
  const nodes = meta.state.nodes.size > 0 ? [...meta.state.nodes.keys()] : members.map((m) => m.name);
  log.info(
    member.inMetaGroup()
      ? `member ${self} of a partitioned cluster: ${shape.count} partitions of ${shape.replicas} replicas over ${nodes.join(", ")}; peers on ${transport.address}`
      : raftConfig.founding.kind === "gossip"
        ? `member ${self} asks the partitioned cluster to add it: peers on ${transport.address}`
        : `member ${self} waits to be added to the partitioned cluster (homekv cluster add ${self}=${transport.address}): peers on ${transport.address}`,
  );
  const backups = createBackups({
    fs: realFileSystem,
    dataDir: dir,
    engine: "memory",
    log: (line) => log.info(line),
    write: (into) =>
      writePartitionedBackup({
        fs: realFileSystem,
        into,
        coordinator: member.coordinator,
        partitions: member.partitions,
      }),
  });
  let grpcAddress = "";
  return {
    db: member.database(
      async () => {
        joining?.stop();
        try {
          await backups.settled();
          await member.stop();
          await engine.close();
        } finally {
          await lock.release();
        }
      },
      (target) => backups.backup(target),
    ),
    scans: partitionedScans({ coordinator: member.coordinator, partitions: member.partitions }),
    ring: () => ({
      partitions: shape.count,
      replicas: shape.replicas,
      placement: member.replicas.current,
      leaders: new Map(
        [...member.replicas.groups].map(
          ([partition, group]) => [partition, member.names.get(group.driver.leader) ?? ""] as const,
        ),
      ),
    }),
    replicated: {
      cluster: partitionedClusterControl({
        clusterId: config.cluster.clusterId,
        selfId: member.selfId,
        meta,
        rpc,
        nameOf: (id) => member.names.get(id),
        grpcAddress: () => grpcAddress,
        stillCounted: member.stillCounted,
      }),
      serving(address) {
        grpcAddress = address;
      },
    },
  };
}

/** `total` ÷ `partitions`, rounded up, and at least `min`. */
function share(total: number, partitions: number, min: number): number {
  return Math.max(min, Math.ceil(total / partitions));
}

/**
 * Past its first start, a node founded through gossip is given no seeds (findGroup): the meta
 * log's founding entries name the founders and where they are, as --initial-cluster names them to
 * a node restarted with it. A founder goes on as one ("new": the log is there already, nothing is
 * written): should the cluster not have been created yet (every founder stopped before an election),
 * it is its meta leader that creates it, and it founds the partitions' replicas it never started.
 */
function foundedThroughGossip(
  metaLog: RaftStorage,
  found: { seeds: MemberAddress[]; initialState: InitialClusterState },
  config: ServeConfig,
): { seeds: MemberAddress[]; initialState: InitialClusterState } {
  if (found.seeds.length > 0) return found;
  const seeds = foundersInLog(metaLog);
  if (seeds.length === 0) return found;
  return { seeds, initialState: seeds.some((m) => m.name === config.cluster.nodeId) ? "new" : "existing" };
}

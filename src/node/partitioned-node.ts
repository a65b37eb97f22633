import type { Membership } from "../cluster/membership.ts";
import { META_GROUP, MetaGroup } from "../cluster/meta/meta-group.ts";
import type { MetaState } from "../cluster/meta/meta-state.ts";
import { askNodeChange, serveNodeChanges } from "../cluster/meta/node-changes.ts";
import { serveTimestamps, TimestampClient } from "../cluster/meta/timestamp-rpc.ts";
import { isMember } from "../cluster/raft/configuration.ts";
import { RaftLogEngine } from "../cluster/raft/group-log-engine.ts";
import type { RaftStorage } from "../cluster/raft/storage.ts";
import type { MemberAddress, NodeId } from "../cluster/raft/types.ts";
import { foundersInLog, foundGroupIfNew, type InitialClusterState } from "../cluster/replication/bootstrap.ts";
import { GroupMover } from "../cluster/replication/group-mover.ts";
import { raftIdOf } from "../cluster/replication/member-id.ts";
import { oneAtATime } from "../cluster/replication/one-at-a-time.ts";
import { peerChannels } from "../cluster/replication/peer-channels.ts";
import { PeerLiveness } from "../cluster/replication/peer-liveness.ts";
import { createPeerRpc } from "../cluster/replication/peer-rpc.ts";
import { RaftHost } from "../cluster/replication/raft-host.ts";
import { StreamSlots } from "../cluster/replication/stream-slots.ts";
import { partitionOf } from "../cluster/ring/partition-of.ts";
import type { Placement } from "../cluster/ring/placement.ts";
import { TxnCoordinator } from "../cluster/txn/coordinator.ts";
import type { PartitionGroup } from "../cluster/txn/partition-group.ts";
import { peerPartitionAccess, servePartitions } from "../cluster/txn/partition-rpc.ts";
import { HomeKvError } from "../errors.ts";
import { realFileSystem } from "../io/fs/real-fs.ts";
import { mulberry32 } from "../random.ts";
import type { RingView } from "../server/ring.ts";
import type { Scans } from "../server/scan-cursors.ts";
import { claimDataDirEngine } from "../storage/data-dir-engine.ts";
import { lockDataDir, processIsAlive } from "../storage/data-dir-lock.ts";
import type { Database, DatabaseStats } from "../storage/database.ts";
import { REQUEST_IDS_REMEMBERED } from "../storage/request-ids.ts";
import { delay, realTimers } from "../timers.ts";
import { findGroup, keepJoining } from "./gossip-join.ts";
import { openNodeTransport } from "./node-transport.ts";
import { PartitionReplicas } from "./partition-replicas.ts";
import { partitionedClusterControl } from "./partitioned-cluster-control.ts";
import { partitionedDatabase } from "./partitioned-database.ts";
import { partitionedScans } from "./partitioned-scans.ts";
import { partitionedWatches } from "./partitioned-watches.ts";
import type { ReplicatedNode } from "./replicated-database.ts";
import type { PartitionsConfig, RaftConfig, ServeConfig } from "./serve-config.ts";
import type { NodeLog } from "./start-node.ts";

/** A read or a timestamp waits this long for a leader's confirmation, then UNAVAILABLE. */
const READ_TIMEOUT_MS = 5_000;
/**
 * How long a transaction's locks stand before a reader may roll them back (its coordinator died),
 * as TiKV's default: writers of its keys wait that long at most for a coordinator that is gone.
 */
const LOCK_TTL_MS = 3_000;
/** One peer call's wait for an answer; a partition's leader is looked for this many rounds of ticks. */
const CALL_TIMEOUT_MS = 2_000;
const LEADER_ROUNDS = 100;
/**
 * Each peer is pinged every PING_TICKS Raft ticks, and suspected down once silent for
 * SUSPECT_TICKS: as long as an election's least timeout (10 ticks), so a paused leader's quiet
 * groups elect about as fast as busy ones do.
 */
const PING_TICKS = 2;
const SUSPECT_TICKS = 10;
/**
 * How often, in Raft ticks, a node hands one partition's leadership to the node the placement
 * prefers and retires the replicas moved away.
 */
const BALANCE_TICKS = 20;
/** How often, in Raft ticks, the leader of each group takes its next step toward the placement. */
const MOVE_TICKS = 2;
/**
 * A partition checkpoints after its share of --checkpoint-wal-bytes and --checkpoint-raft-entries,
 * but not after less than these: a checkpoint costs a file and a pass over the partition's keys.
 */
const PARTITION_CHECKPOINT_BYTES_MIN = 1 << 20;
const PARTITION_CHECKPOINT_ENTRIES_MIN = 16;
/**
 * Snapshot streams this node sends to one peer at a time (each keeps a window of 4 MiB in the
 * peer's 32 MiB queue; a node joining is sent one per replica moved to it).
 */
const SNAPSHOT_STREAMS_PER_PEER = 2;
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
 * removed has its replicas moved to the others.
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
  const selfId = raftIdOf(self);
  const names = new Map<NodeId, string>(members.map((m) => [raftIdOf(m.name), m.name]));
  const metaLog = engine.group(META_GROUP);
  const transport = openNodeTransport(config, raftConfig, members, log);
  const channels = peerChannels(transport);
  const host = new RaftHost({ channels, names, tickMs: raftConfig.tickMs });
  const rpc = createPeerRpc(channels, { onBug: (error) => log.error("internal error in a peer call:", error) });
  const random = mulberry32(Math.floor(Math.random() * 2 ** 32));
  const liveness = new PeerLiveness({
    rpc,
    peers: members.map((m) => m.name).filter((name) => name !== self),
    intervalMs: raftConfig.tickMs * PING_TICKS,
    suspectAfterMs: raftConfig.tickMs * SUSPECT_TICKS,
  });
  const disconnected = (peer: NodeId) => {
    const name = names.get(peer);
    return name === undefined || !transport.connected(name) || liveness.suspects(name);
  };
  const isUp = (peer: NodeId) => !disconnected(peer);
  const groupOptions = { host, id: selfId, random, tickMs: raftConfig.tickMs, disconnected };

  let timestamps: TimestampClient | undefined;
  const takeTimestamps = (count: number) => {
    if (!timestamps) return Promise.reject(new HomeKvError("E_UNAVAILABLE", "this node is starting"));
    return timestamps.take(count);
  };
  const mover = new GroupMover({
    isUp,
    onStepFailed: (step, error) => log.debug(`a replica move's step (${JSON.stringify(step)}) is retried: ${error}`),
  });
  const replicas = new PartitionReplicas({
    self,
    engine,
    host,
    group: {
      ...groupOptions,
      timestamps: takeTimestamps,
      readTimeoutMs: READ_TIMEOUT_MS,
      // Ids hash to their partitions: all of them together remember about what one server does.
      requestIdsRemembered: share(REQUEST_IDS_REMEMBERED, shape.count, REQUEST_IDS_PER_PARTITION_MIN),
      checkpoints: {
        fs: realFileSystem,
        // A partition's share of what one replicated member's log may hold: the logs of all of them
        // together are then held to about as much.
        logBytes: share(config.storage.checkpointWalBytes, shape.count, PARTITION_CHECKPOINT_BYTES_MIN),
        logEntries: share(raftConfig.checkpointEntries, shape.count, PARTITION_CHECKPOINT_ENTRIES_MIN),
        tailEntries: share(raftConfig.logTailEntries, shape.count, 0),
        send: (to, payload) => {
          const name = names.get(to);
          if (name !== undefined) transport.send(name, payload);
        },
        log: (line) => log.info(line),
        // One at a time: under an even load every partition reaches its threshold together.
        turns: oneAtATime(),
        streamSlots: new StreamSlots(SNAPSHOT_STREAMS_PER_PEER),
      },
    },
    partitionsDir: `${dir}/partitions`,
    mover,
    members: (partition) => access.members(partition),
    log,
    founder: initialState === "new",
  });
  /** Why this node cannot route keys (the cluster's shape unknown yet, or not the one it was started with). */
  let unroutable: HomeKvError | undefined = new HomeKvError(
    "E_UNAVAILABLE",
    "this node does not know the cluster's placement yet (it is starting, or waits to be added)",
  );
  /** The cluster's partition count, once this node can route keys to them. */
  const routablePartitions = () => {
    if (unroutable) throw unroutable;
    return shape.count;
  };
  let meta: MetaGroup | undefined;
  const place = (next: Placement) => {
    // The cluster's partition count is the one it was created with; another would send keys elsewhere.
    if (next.length !== shape.count) {
      unroutable = new HomeKvError(
        "E_CONFIG",
        `this cluster was created with ${next.length} partitions; this node was started with --partitions ${shape.count}: restart it with --partitions ${next.length}`,
      );
      log.warn(unroutable.message);
      return;
    }
    unroutable = undefined;
    replicas.place(next, meta?.state.founded ?? []);
  };
  /** The cluster's nodes changed: each is named and dialled, and watched by the failure detector. */
  const dialled = new Map(members.map((m) => [m.name, m.peerAddress]));
  const meetNodes = (state: MetaState) => {
    for (const node of state.nodes.values()) {
      names.set(raftIdOf(node.name), node.name);
      if (node.name === self || dialled.get(node.name) === node.peerAddress) continue;
      dialled.set(node.name, node.peerAddress);
      transport.addPeer(node.name, node.peerAddress);
    }
    liveness.watch([...names.values()].filter((name) => name !== self));
  };
  meta = new MetaGroup({
    ...groupOptions,
    voters: [],
    log: metaLog,
    confirmTimeoutMs: READ_TIMEOUT_MS,
    ...(initialState === "new"
      ? { founding: { partitions: shape.count, replicas: shape.replicas, nodes: members } }
      : {}),
    onPlacement: place,
    onNodes: meetNodes,
    onFatal: (error) => log.error("the meta group's log failed; restart this node:", error),
  });
  const metaGroup = meta;
  timestamps = new TimestampClient({ meta, rpc, nameOf: (id) => names.get(id), timeoutMs: READ_TIMEOUT_MS });
  serveTimestamps(rpc, meta);
  servePartitions(rpc, (partition) => replicas.groups.get(partition));
  const encoder = new TextEncoder();
  const access = peerPartitionAccess({
    rpc,
    local: (partition) => replicas.groups.get(partition),
    partitionOf: (key) => partitionOf(encoder.encode(key), routablePartitions()),
    // The leader this node's replica knows, the placed replicas, then every other node: while a
    // partition moves, its leader may be a node the placement no longer lists.
    candidates: (partition) => {
      const known = names.get(replicas.groups.get(partition)?.driver.leader ?? 0);
      const placed = replicas.current[partition] ?? [];
      const others = [...metaGroup.state.nodes.keys()].filter((name) => !placed.includes(name));
      return [...new Set([...(known ? [known] : []), ...placed, ...others])].filter((name) => name !== self);
    },
    callTimeoutMs: CALL_TIMEOUT_MS,
    pause: () => delay(raftConfig.tickMs),
    rounds: LEADER_ROUNDS,
  });
  /** Which group still counts a removed node of this name: the meta group, or a partition's (its leader asked). */
  const stillCounted = async (name: string) => {
    const id = raftIdOf(name);
    if (isMember(metaGroup.driver.groupStatus().conf, id)) return "the meta group";
    for (let partition = 0; partition < shape.count; partition++)
      if (isMember(await access.members(partition), id)) return `partition ${partition}'s group`;
    return undefined;
  };
  serveNodeChanges(rpc, meta, stillCounted);
  const coordinator = new TxnCoordinator({
    access,
    timestamps: takeTimestamps,
    lockTtlMs: LOCK_TTL_MS,
    now: () => Date.now(),
    pause: (ms) => delay(ms),
    readTimeoutMs: READ_TIMEOUT_MS,
  });
  host.start();
  liveness.start();
  // Every node is a voter of the meta group; the partitions' groups follow the placement. Each
  // leader takes its groups' next move step every MOVE_TICKS; leaders are handed to the nodes the
  // placement prefers, and replicas moved away retired, every BALANCE_TICKS.
  const stopMoving = realTimers.every(raftConfig.tickMs * MOVE_TICKS, () => {
    mover.step(metaGroup.driver, [...metaGroup.state.nodes.keys()].map(raftIdOf));
    replicas.move();
  });
  const stopBalancing = realTimers.every(raftConfig.tickMs * BALANCE_TICKS, () => {
    replicas.balance(isUp);
    replicas.collect();
  });
  const inMetaGroup = () => isMember(metaGroup.driver.groupStatus().conf, selfId);
  // Found through gossip: until a member, ask the nodes gossip shows to put this one in the cluster.
  const membership = gossip();
  const joining =
    raftConfig.founding.kind === "gossip" && membership
      ? keepJoining(
          membership,
          {
            self,
            isMember: inMetaGroup,
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
    inMetaGroup()
      ? `member ${self} of a partitioned cluster: ${shape.count} partitions of ${shape.replicas} replicas over ${nodes.join(", ")}; peers on ${transport.address}`
      : raftConfig.founding.kind === "gossip"
        ? `member ${self} asks the partitioned cluster to add it: peers on ${transport.address}`
        : `member ${self} waits to be added to the partitioned cluster (homekv cluster add ${self}=${transport.address}): peers on ${transport.address}`,
  );
  let grpcAddress = "";
  return {
    db: partitionedDatabase({
      coordinator,
      partitions: routablePartitions,
      watches: partitionedWatches({
        access,
        coordinator,
        partitions: routablePartitions,
        pollMs: raftConfig.tickMs,
      }),
      stats: () => ledStats([...replicas.groups.values()].filter((group) => group.driver.leads)),
      checkpoint: () => replicas.checkpoint(),
      async close() {
        joining?.stop();
        stopMoving();
        stopBalancing();
        liveness.stop();
        rpc.close();
        host.stop();
        transport.close();
        try {
          // Starts under way first: a replica they start must stop too.
          await replicas.settled();
          await replicas.stop();
          await engine.close();
        } finally {
          await lock.release();
        }
      },
    }),
    scans: partitionedScans({ coordinator, partitions: routablePartitions }),
    ring: () => ({
      partitions: shape.count,
      replicas: shape.replicas,
      placement: replicas.current,
      leaders: new Map(
        [...replicas.groups].map(([partition, group]) => [partition, names.get(group.driver.leader) ?? ""] as const),
      ),
    }),
    replicated: {
      cluster: partitionedClusterControl({
        clusterId: config.cluster.clusterId,
        selfId,
        meta,
        rpc,
        nameOf: (id) => names.get(id),
        grpcAddress: () => grpcAddress,
        stillCounted,
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

/** The figures of the partitions this node leads, added up (each partition counted where it leads). */
function ledStats(led: readonly PartitionGroup[]): DatabaseStats {
  const stats = led.map((group) => group.store.stats());
  const sum = (field: "keys" | "valueBytes" | "versions" | "openSnapshots" | "packedBytes") =>
    stats.reduce((total, s) => total + s[field], 0);
  return {
    revision: 0,
    compactedRevision: 0,
    keys: sum("keys"),
    valueBytes: sum("valueBytes"),
    versions: sum("versions"),
    openSnapshots: sum("openSnapshots"),
    gcFloor: 0,
    gcRuns: 0,
    gcVersionsCollected: 0,
    versionsVisited: 0,
    packedBytes: sum("packedBytes"),
    engine: { name: "memory", memtableBytes: 0, frozenMemtables: 0, memtableFlushes: 0 },
    recoveryMs: 0,
  };
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

import { META_GROUP, MetaGroup, type MetaGroupOptions } from "../cluster/meta/meta-group.ts";
import type { MetaState } from "../cluster/meta/meta-state.ts";
import { type StillCounted, serveNodeChanges } from "../cluster/meta/node-changes.ts";
import { serveTimestamps, TimestampClient } from "../cluster/meta/timestamp-rpc.ts";
import { isMember } from "../cluster/raft/configuration.ts";
import type { RaftLogEngine } from "../cluster/raft/group-log-engine.ts";
import type { MemberAddress, NodeId } from "../cluster/raft/types.ts";
import type { InitialClusterState } from "../cluster/replication/bootstrap.ts";
import { GroupMover } from "../cluster/replication/group-mover.ts";
import { raftIdOf } from "../cluster/replication/member-id.ts";
import { oneAtATime } from "../cluster/replication/one-at-a-time.ts";
import { peerChannels } from "../cluster/replication/peer-channels.ts";
import { PeerLiveness } from "../cluster/replication/peer-liveness.ts";
import { createPeerRpc, type PeerRpc } from "../cluster/replication/peer-rpc.ts";
import { RaftHost } from "../cluster/replication/raft-host.ts";
import { StreamSlots } from "../cluster/replication/stream-slots.ts";
import { partitionOf } from "../cluster/ring/partition-of.ts";
import type { Placement } from "../cluster/ring/placement.ts";
import type { PeerTransport } from "../cluster/transport/types.ts";
import { TxnCoordinator } from "../cluster/txn/coordinator.ts";
import type { PartitionGroup } from "../cluster/txn/partition-group.ts";
import { peerPartitionAccess, servePartitions } from "../cluster/txn/partition-rpc.ts";
import { HomeKvError } from "../errors.ts";
import type { FileSystem } from "../io/fs/file-system.ts";
import type { Database, DatabaseStats } from "../storage/database.ts";
import type { ExpirySettings } from "../storage/ttl/database-expiry.ts";
import { delay, realTimers, type Timers } from "../timers.ts";
import { PartitionReplicas } from "./partition-replicas.ts";
import { partitionedDatabase } from "./partitioned-database.ts";
import { partitionedWatches } from "./partitioned-watches.ts";
import type { PartitionsConfig } from "./serve-config.ts";
import type { NodeLog } from "./start-node.ts";

/** A read or a timestamp waits this long for a leader's confirmation, then UNAVAILABLE. */
const READ_TIMEOUT_MS = 5_000;
/**
 * Snapshot streams this node sends to one peer at a time (each keeps a window of 4 MiB in the
 * peer's 32 MiB queue; a node joining is sent one per replica moved to it).
 */
const SNAPSHOT_STREAMS_PER_PEER = 2;
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

export interface PartitionedMemberOptions {
  /** This node's name. */
  self: string;
  /** The nodes known at start, this one included (--initial-cluster, or the founders a log names). */
  members: readonly MemberAddress[];
  /** "new": a founder, whose meta log begins with the founding entries; "existing": waits to be added. */
  initialState: InitialClusterState;
  /** Every group's Raft log, the meta group's founded already (foundGroupIfNew). */
  engine: RaftLogEngine;
  transport: PeerTransport;
  shape: PartitionsConfig;
  tickMs: number;
  /** Each partition replica's checkpoints, in `<dir>/<partition>`: when one is due, and the log tail kept. */
  checkpoints: { fs: FileSystem; dir: string; logBytes: number; logEntries: number; tailEntries: number };
  /** Request ids each partition remembers (every replica of a partition must be given the same). */
  requestIdsRemembered: number;
  /** Elections and back-offs draw from it. */
  random: () => number;
  log: NodeLog;
  /** Default: the real ones (src/timers.ts); a simulation gives virtual ones. */
  timers?: Timers;
  /** Wall-clock Unix ms, in which the locks' TTLs are written (default Date.now). */
  wallClock?: () => number;
  /** Each replica's TTL sweeper: its clock and timers (defaults otherwise). */
  expiry?: ExpirySettings;
  /** The meta group's timestamp window and log compaction (defaults otherwise). */
  meta?: Pick<MetaGroupOptions, "timestampWindow" | "compactAfterEntries">;
}

/** A running node of a partitioned cluster, as partitioned-node.ts serves it (and the simulation drives it). */
export interface PartitionedMember {
  readonly selfId: NodeId;
  readonly meta: MetaGroup;
  readonly replicas: PartitionReplicas;
  readonly rpc: PeerRpc;
  readonly coordinator: TxnCoordinator;
  /** Raft id → node name, of every node this one knows (a live map). */
  readonly names: ReadonlyMap<NodeId, string>;
  /** Which group still counts a removed node of this name (node-changes.ts). */
  readonly stillCounted: StillCounted;
  /** The cluster's partition count, once this node can route keys to them (throws before). */
  partitions(): number;
  /** Whether this node is a member of the meta group (a founder, or added since). */
  inMetaGroup(): boolean;
  /**
   * The Database the API is served through; its `close` is `close`, which should call `stop`
   * first, and its `backup` is `backup`.
   */
  database(close: () => Promise<void>, backup: Database["backup"]): Database;
  /** Stops the timers, calls, groups and transport; resolves once replica starts, retirements and checkpoints under way are done. */
  stop(): Promise<void>;
}

/**
 * A node of a partitioned cluster on its log engine and peer transport (docs/internals/partitions.md):
 * one RaftHost running the meta group (group 1: the cluster's shape, nodes and placement, and the
 * timestamp oracle) and this node's replicas of the partitions (PartitionReplicas), the peer RPCs
 * that serve them, a failure detector, the transaction coordinator, and the timers that move the
 * groups toward the placement. Every node of the cluster is a voter of the meta group; its first
 * leader creates the cluster and places the partitions.
 */
export function startPartitionedMember(options: PartitionedMemberOptions): PartitionedMember {
  const { self, engine, transport, shape, tickMs, log, random } = options;
  const timers = options.timers ?? realTimers;
  const selfId = raftIdOf(self);
  const names = new Map<NodeId, string>(options.members.map((m) => [raftIdOf(m.name), m.name]));
  const channels = peerChannels(transport);
  // A node added while this one was behind (down, cut off) is named in the meta entries this one
  // has yet to apply, and may be the leader that sends them: its messages are taken, and its name
  // learned, when their id is its name's (ids are the nodes' name hashes). Dropped, this node could
  // never catch up while that node leads (found by the partitioned simulation).
  const learnName = (id: NodeId, name: string) => {
    if (raftIdOf(name) !== id) return false;
    names.set(id, name);
    return true;
  };
  const host = new RaftHost({ channels, names, learnName, tickMs, timers });
  const rpc = createPeerRpc(channels, {
    onBug: (error) => log.error("internal error in a peer call:", error),
    timers,
    random,
  });
  const liveness = new PeerLiveness({
    rpc,
    peers: options.members.map((m) => m.name).filter((name) => name !== self),
    intervalMs: tickMs * PING_TICKS,
    suspectAfterMs: tickMs * SUSPECT_TICKS,
    timers,
  });
  const disconnected = (peer: NodeId) => {
    const name = names.get(peer);
    return name === undefined || !transport.connected(name) || liveness.suspects(name);
  };
  const isUp = (peer: NodeId) => !disconnected(peer);
  // A replica here may be made again, empty, under this node's id after it was removed (placed here
  // again, or the node wiped and added again): it votes only once its group has added it again.
  const groupOptions = { host, id: selfId, random, tickMs, disconnected, timers, votesOnlyAsMember: true };

  let timestamps: TimestampClient | undefined;
  const takeTimestamps = (count: number) => {
    if (!timestamps) return Promise.reject(new HomeKvError("E_UNAVAILABLE", "this node is starting"));
    return timestamps.take(count);
  };
  const mover = new GroupMover({
    isUp,
    onStepFailed: (step, error) => log.debug(`a replica move's step (${JSON.stringify(step)}) is retried: ${error}`),
  });
  const { checkpoints } = options;
  const replicas = new PartitionReplicas({
    self,
    engine,
    host,
    group: {
      ...groupOptions,
      timestamps: takeTimestamps,
      readTimeoutMs: READ_TIMEOUT_MS,
      requestIdsRemembered: options.requestIdsRemembered,
      expiry: options.expiry,
      checkpoints: {
        fs: checkpoints.fs,
        logBytes: checkpoints.logBytes,
        logEntries: checkpoints.logEntries,
        tailEntries: checkpoints.tailEntries,
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
    partitionsDir: checkpoints.dir,
    mover,
    members: (partition) => access.members(partition),
    log,
    founder: options.initialState === "new",
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
  const dialled = new Map(options.members.map((m) => [m.name, m.peerAddress]));
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
    ...options.meta,
    voters: [],
    log: engine.group(META_GROUP),
    confirmTimeoutMs: READ_TIMEOUT_MS,
    ...(options.initialState === "new"
      ? { founding: { partitions: shape.count, replicas: shape.replicas, nodes: options.members } }
      : {}),
    onPlacement: place,
    onNodes: meetNodes,
    onFatal: (error) => log.error("the meta group's log failed; restart this node:", error),
  });
  const metaGroup = meta;
  timestamps = new TimestampClient({
    meta,
    rpc,
    nameOf: (id) => names.get(id),
    timeoutMs: READ_TIMEOUT_MS,
    timers,
  });
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
    pause: () => delay(tickMs, timers),
    rounds: LEADER_ROUNDS,
  });
  /** The first partition whose group counts node `id` (its leader asked), or undefined. */
  const countingPartition = async (id: NodeId) => {
    for (let partition = 0; partition < shape.count; partition++)
      if (isMember(await access.members(partition), id)) return partition;
    return undefined;
  };
  /** Which group still counts a removed node of this name: the meta group, or a partition's (its leader asked). */
  const stillCounted = async (name: string) => {
    const id = raftIdOf(name);
    if (isMember(metaGroup.driver.groupStatus().conf, id)) return "the meta group";
    const partition = await countingPartition(id);
    return partition === undefined ? undefined : `partition ${partition}'s group`;
  };
  /**
   * A removed node stays a voter of the meta group until no partition's group counts it: taken out
   * at once, it could miss the placement that moves its replicas away (removed from the meta group
   * before it applied it), and a partition it leads would go on toward the placement it knew,
   * itself included, for ever (found by the partitioned simulation). `released`: the removed nodes
   * the meta group's leader found no partition counts, which may leave it.
   */
  const released = new Set<string>();
  let releasing = false;
  /** Removed nodes the meta group still counts, and that may still hold a partition's replica. */
  const departing = () => {
    const { conf } = metaGroup.driver.groupStatus();
    for (const name of released) if (!metaGroup.state.removed.has(name)) released.delete(name);
    return [...metaGroup.state.removed].filter((name) => !released.has(name) && isMember(conf, raftIdOf(name)));
  };
  /** The meta group's leader asks the partitions' leaders whether they still count the departing nodes. */
  const release = () => {
    const names = metaGroup.driver.leads && !releasing ? departing() : [];
    if (names.length === 0) return;
    releasing = true;
    (async () => {
      for (const name of names) if ((await countingPartition(raftIdOf(name))) === undefined) released.add(name);
    })()
      .catch((error) => log.debug(`a removed node's partitions were not all asked: ${error}`))
      .finally(() => {
        releasing = false;
      });
  };
  serveNodeChanges(rpc, meta, stillCounted);
  const coordinator = new TxnCoordinator({
    access,
    timestamps: takeTimestamps,
    lockTtlMs: LOCK_TTL_MS,
    now: options.wallClock ?? (() => Date.now()),
    pause: (ms) => delay(ms, timers),
    readTimeoutMs: READ_TIMEOUT_MS,
  });
  host.start();
  liveness.start();
  // Every node is a voter of the meta group (a removed one until its replicas are gone); the
  // partitions' groups follow the placement. Each leader takes its groups' next move step every
  // MOVE_TICKS; leaders are handed to the nodes the placement prefers, replicas moved away retired,
  // and removed nodes released from the meta group, every BALANCE_TICKS.
  const stopMoving = timers.every(tickMs * MOVE_TICKS, () => {
    mover.step(metaGroup.driver, [...metaGroup.state.nodes.keys(), ...departing()].map(raftIdOf));
    replicas.move();
  });
  const stopBalancing = timers.every(tickMs * BALANCE_TICKS, () => {
    replicas.balance(isUp);
    replicas.collect();
    release();
  });
  return {
    selfId,
    meta,
    replicas,
    rpc,
    coordinator,
    names,
    stillCounted,
    partitions: routablePartitions,
    inMetaGroup: () => isMember(metaGroup.driver.groupStatus().conf, selfId),
    database: (close, backup) =>
      partitionedDatabase({
        coordinator,
        partitions: routablePartitions,
        watches: partitionedWatches({ access, coordinator, partitions: routablePartitions, pollMs: tickMs, timers }),
        stats: () => ledStats([...replicas.groups.values()].filter((group) => group.driver.leads)),
        checkpoint: (options) => replicas.checkpoint(options),
        backup,
        close,
        timers,
        random,
      }),
    async stop() {
      stopMoving();
      stopBalancing();
      liveness.stop();
      rpc.close();
      host.stop();
      transport.close();
      // Starts under way first: a replica they start must stop too.
      await replicas.settled();
      await replicas.stop();
    },
  };
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

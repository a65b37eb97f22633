import { META_GROUP } from "../../../src/cluster/meta/meta-group.ts";
import { RaftLogEngine } from "../../../src/cluster/raft/group-log-engine.ts";
import type { MemberAddress, NodeId } from "../../../src/cluster/raft/types.ts";
import { foundGroupIfNew, type InitialClusterState } from "../../../src/cluster/replication/bootstrap.ts";
import { raftIdOf } from "../../../src/cluster/replication/member-id.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { type PartitionedMember, startPartitionedMember } from "../../../src/node/partitioned-member.ts";
import { mulberry32 } from "../../../src/random.ts";
import type { Database } from "../../../src/storage/database.ts";
import { ProcessFileSystem } from "../raft/process-fs.ts";
import { hash } from "../replication/sim/seeded-simulation.ts";
import type { SimNetwork } from "../replication/sim/sim-network.ts";
import type { Owner, VirtualTime } from "../replication/sim/virtual-time.ts";

/** The server's Raft tick (serve --raft-tick 100). */
export const TICK_MS = 100;
/**
 * Virtual ms are wall-clock ms from here (the locks' TTLs and the TTL sweeper's deadlines are
 * written in wall-clock time; any fixed start replays alike).
 */
const EPOCH_MS = 1_700_000_000_000;
const GROUPS_DIR = "/groups";
const PARTITIONS_DIR = "/partitions";

/** What every node of a run is started with (the figures of one simulation). */
export interface NodeSettings {
  partitions: number;
  replicas: number;
  /** Each partition replica checkpoints after this many entries or bytes, keeping `tailEntries` behind. */
  checkpointEntries: number;
  checkpointBytes: number;
  tailEntries: number;
  /** The meta group's timestamp window and compaction (small: reservations and snapshots happen). */
  timestampWindow: number;
  metaCompactAfterEntries: number;
  /** A sync of the disk takes up to this long. */
  syncMsMax: number;
}

/** One start of a node's process: its events vanish when it dies and wait while it is paused. */
export interface NodeProcess extends Owner {
  readonly generation: number;
  readonly fs: ProcessFileSystem;
  member?: PartitionedMember;
  /** Every group's Raft log, as the member runs on it. */
  engine?: RaftLogEngine;
  db?: Database;
  /** Closing (a clean stop): no other fault hits it meanwhile. */
  stopping: boolean;
}

/**
 * A node of the simulated cluster: a disk (a MemoryFileSystem that keeps what was synced across
 * crashes) and, while it runs, a process: the real RaftLogEngine over it and the real partitioned
 * member (src/node/partitioned-member.ts, what `homekv serve --partitions` runs) on virtual time
 * and the simulated network.
 */
export class SimNode {
  readonly id: NodeId;
  disk = new MemoryFileSystem();
  process: NodeProcess | undefined;
  generations = 0;
  /** "new" while its disk holds (or will hold) the cluster's founding; "existing" for a node added later. */
  initialState: InitialClusterState;

  constructor(
    readonly name: string,
    founder: boolean,
  ) {
    this.id = raftIdOf(name);
    this.initialState = founder ? "new" : "existing";
  }

  get running(): boolean {
    return this.process?.member !== undefined;
  }

  /** Starts a process on the node's disk; `report` takes what the process logs as an error. */
  start(
    world: {
      time: VirtualTime;
      network: SimNetwork;
      random: () => number;
      seed: number;
      /** Where the process's log lines go (a replay's trace), if anywhere. */
      trace?: (line: string) => void;
    },
    settings: NodeSettings,
    seeds: readonly MemberAddress[],
    report: (what: string, error?: unknown) => void,
  ): NodeProcess {
    const generation = ++this.generations;
    const owner: Owner = { alive: true, pausedUntil: 0 };
    const timers = world.time.timersOf(owner);
    const fs = new ProcessFileSystem(
      this.disk,
      () => new Promise((resolve) => timers.after(world.random() * settings.syncMsMax, resolve)),
    );
    const process: NodeProcess = Object.assign(owner, { generation, fs, stopping: false });
    this.process = process;
    const logged = (what: string, error?: unknown) => {
      if (process.alive && !process.stopping) report(`${this.name}: ${what}`, error);
    };
    const start = async () => {
      // It warns of the torn tail a crash leaves: expected here.
      const engine = await RaftLogEngine.open(fs, GROUPS_DIR, () => {});
      if (!process.alive) return;
      await foundGroupIfNew(engine.group(META_GROUP), seeds, this.initialState);
      if (!process.alive) return;
      const transport = world.network.attach(this.name, process);
      const member = startPartitionedMember({
        self: this.name,
        members: seeds,
        initialState: this.initialState,
        engine,
        transport,
        shape: { count: settings.partitions, replicas: settings.replicas },
        tickMs: TICK_MS,
        checkpoints: {
          fs,
          dir: PARTITIONS_DIR,
          logBytes: settings.checkpointBytes,
          logEntries: settings.checkpointEntries,
          tailEntries: settings.tailEntries,
        },
        requestIdsRemembered: 1_000,
        random: mulberry32(hash(`${world.seed}/${this.name}/${generation}`)),
        log: {
          debug: (line) => world.trace?.(`${this.name} debug: ${line}`),
          info: (line) => world.trace?.(`${this.name}: ${line}`),
          warn: (line) => world.trace?.(`${this.name} warn: ${line}`),
          error: (line, error) => logged(line, error),
        },
        timers,
        wallClock: () => EPOCH_MS + Math.floor(world.time.now),
        expiry: {
          now: () => EPOCH_MS + Math.floor(world.time.now),
          setTimer: (fire, delayMs) => timers.after(delayMs, fire),
          clearTimer: (cancel) => (cancel as () => void)(),
        },
        meta: { timestampWindow: settings.timestampWindow, compactAfterEntries: settings.metaCompactAfterEntries },
      });
      process.member = member;
      process.engine = engine;
      process.db = member.database(
        async () => {
          await member.stop();
          await engine.close();
        },
        () => Promise.reject(new Error("the simulation takes no backup")),
      );
    };
    start().catch((error) => logged("did not start:", error));
    return process;
  }

  /** Power cut: the process is gone at once; the disk keeps what was synced (the last write maybe torn). */
  crash(network: SimNetwork, random: () => number): void {
    this.kill(network);
    this.disk.crash(random);
  }

  /** The process is gone (after a clean stop, or a crash). */
  kill(network: SimNetwork): void {
    const process = this.process;
    if (process === undefined) return;
    process.alive = false;
    process.fs.kill();
    network.crashed(this.name);
    this.process = undefined;
  }

  /** The node is taken out of service: its process gone, its disk wiped; started again, it is a newcomer. */
  decommission(network: SimNetwork): void {
    this.kill(network);
    this.disk = new MemoryFileSystem();
    this.initialState = "existing";
  }
}

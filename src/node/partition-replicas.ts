import { isMember } from "../cluster/raft/configuration.ts";
import type { RaftLogEngine } from "../cluster/raft/group-log-engine.ts";
import type { ConfState, NodeId } from "../cluster/raft/types.ts";
import { foundGroupIfNew } from "../cluster/replication/bootstrap.ts";
import type { GroupMover } from "../cluster/replication/group-mover.ts";
import { CheckpointCatchUpError, SERIALIZABLE_CHECKPOINT_HINT } from "../cluster/replication/member-checkpoints.ts";
import { raftIdOf } from "../cluster/replication/member-id.ts";
import type { RaftHost } from "../cluster/replication/raft-host.ts";
import type { Placement } from "../cluster/ring/placement.ts";
import {
  type PartitionCheckpointOptions,
  PartitionGroup,
  type PartitionGroupOptions,
  partitionGroupId,
  removeCheckpoints,
} from "../cluster/txn/partition-group.ts";
import { describeError, HomeKvError } from "../errors.ts";
import type { CheckpointInfo, CheckpointOptions } from "../storage/database.ts";
import type { NodeLog } from "./start-node.ts";

export interface PartitionReplicasOptions {
  self: string;
  engine: RaftLogEngine;
  host: RaftHost;
  /** What every replica's group is run with (its voters and log are the replicas' own). */
  group: Omit<PartitionGroupOptions, "voters" | "log" | "partition" | "checkpoints"> & {
    /** Each replica's checkpoints go in `<partitionsDir>/<partition>`. */
    checkpoints: Omit<PartitionCheckpointOptions, "dir">;
  };
  partitionsDir: string;
  mover: GroupMover;
  /** The members of a partition's group as its leader knows them (a peer call). */
  members: (partition: number) => Promise<ConfState>;
  log: NodeLog;
  /** A node's Raft id from its name (raftIdOf by default). */
  idOf?: (name: string) => NodeId;
  /**
   * Whether this node founded the cluster (started with --initial-cluster-state new): only then
   * does it found its partitions of the first placement. A founder whose data was lost and that was
   * added again (started with existing) waits to be added to each group like any newcomer.
   */
  founder: boolean;
}

/**
 * This node's replicas of the partitions (docs/internals/partitions.md, "Moves"), kept to the meta
 * group's placement:
 *
 * - A replica the placement gives this node is started. On the first placement's replicas
 *   (`founded`) the group's log begins with its founding voters, the same entries on each; any
 *   other starts empty and waits for the group's leader to add it.
 * - The leader of each group takes it toward the placement's replicas, one step at a time
 *   (GroupMover), and hands leadership to the replica the placement lists first.
 * - A replica the placement no longer gives this node stays while its group counts it (it may
 *   still be needed for a quorum, or lead), across restarts too, and is retired once the group's
 *   leader has removed it: its log goes, leaving a tombstone so that a later replica here never
 *   votes in a term it did.
 *
 * Starts and retirements run one at a time, in the order the placements came.
 */
export class PartitionReplicas {
  readonly groups = new Map<number, PartitionGroup>();
  private placement: Placement = [];
  private founded: Placement = [];
  private queue: Promise<void> = Promise.resolve();
  private collecting = false;

  private readonly idOf: (name: string) => NodeId;

  constructor(private readonly options: PartitionReplicasOptions) {
    this.idOf = options.idOf ?? raftIdOf;
  }

  /** The placement now in force (`founded`: the first one, whose replicas found the groups). */
  get current(): Placement {
    return this.placement;
  }

  /** Adopts a placement: starts the replicas it gives this node (retirements wait for the leaders). */
  place(placement: Placement, founded: Placement): void {
    this.placement = placement;
    this.founded = founded;
    this.run(() => this.startPlaced());
  }

  /** The leader's step of each group this node leads toward its placed replicas. */
  move(): void {
    for (const [partition, group] of this.groups) {
      const target = this.placement[partition];
      if (target !== undefined) this.options.mover.step(group.driver, target.map(this.idOf));
    }
  }

  /**
   * Hands one leadership to the node the placement lists first, where that node votes in the group
   * and answers: leaders settle where the placement spreads them (after an election, a restart or
   * a move). One per call, so that hand-overs do not pile up.
   */
  balance(isUp: (id: NodeId) => boolean): void {
    const { self } = this.options;
    for (const [partition, group] of this.groups) {
      const preferred = this.placement[partition]?.[0];
      if (!group.driver.leads || preferred === undefined || preferred === self) continue;
      const id = this.idOf(preferred);
      if (!isUp(id) || !group.driver.groupStatus().conf.voters.includes(id)) continue;
      group.driver.transferLeadership(id);
      return;
    }
  }

  /** Retires the replicas the placement took from this node that their groups no longer count. */
  collect(): void {
    if (this.collecting) return;
    this.collecting = true;
    this.run(async () => {
      try {
        const self = this.idOf(this.options.self);
        for (const [partition, group] of [...this.groups]) {
          const placed = this.placement[partition];
          if (placed === undefined || placed.includes(this.options.self) || group.driver.leads) continue;
          let conf = group.driver.groupStatus().conf;
          // A member removed may never hear of it (the leader stops writing to it): ask the leader.
          if (isMember(conf, self)) conf = await this.options.members(partition).catch(() => conf);
          if (!isMember(conf, self)) await this.retire(partition);
        }
      } finally {
        this.collecting = false;
      }
    });
  }

  private async startPlaced(): Promise<void> {
    const { self, engine } = this.options;
    const held = new Set(engine.groups());
    for (const partition of this.placement.keys()) {
      if (this.groups.has(partition)) continue;
      const id = partitionGroupId(partition);
      const founders = this.founded[partition] ?? [];
      // Besides the replicas placed here, one whose group may count this node runs too, placed or
      // not: a log here (after a restart mid-move the group may still have it for a voter, one the
      // removal has not reached yet), or a founding replica never started (a slow founder: its
      // group's quorum may need it). collect() retires it once the group's leader has removed it.
      // A tombstone alone (a term, no entries) is no replica.
      const kept = held.has(id) && engine.group(id).lastIndex() > 0;
      const founding =
        this.options.founder && founders.includes(self) && (!held.has(id) || engine.group(id).hardState().term === 0);
      if (!this.placement[partition]?.includes(self) && !kept && !founding) continue;
      const log = engine.group(id);
      // Founding replicas write the same entries; a retired replica's tombstone has a term, so a
      // replica placed here again waits to be added like any newcomer.
      if (founding)
        await foundGroupIfNew(
          log,
          founders.map((name) => ({ name })),
          "new",
          this.idOf,
        );
      if (this.groups.has(partition)) continue;
      const checkpoints = { ...this.options.group.checkpoints, dir: this.dirOf(partition) };
      const group = await PartitionGroup.open({ ...this.options.group, partition, voters: [], log, checkpoints });
      this.groups.set(partition, group);
    }
  }

  /**
   * A checkpoint of each replica here (the Checkpoint call): the newest of their revisions, their
   * live keys and bytes added up. Their ReadIndex rounds run at once (the writes take turns), so the
   * call waits one read timeout at most. A replica retired meanwhile is passed over, even when its
   * round failed for it (its group stopped); any other failure fails the call, naming its partitions,
   * once the other replicas' checkpoints are written. Serializable: no rounds, each replica's applied state.
   */
  async checkpoint(options?: CheckpointOptions): Promise<CheckpointInfo> {
    const begun = performance.now();
    const groups = [...this.groups];
    const outcomes = await Promise.allSettled(groups.map(([, group]) => group.checkpoint(options)));
    let revision = 0;
    let entries = 0;
    let bytes = 0;
    let held = 0;
    /** Failures by what they say, with the partitions that said it (64 partitions without a leader make one line). */
    const failed = new Map<string, number[]>();
    let behind = false;
    let failures = 0;
    outcomes.forEach((outcome, i) => {
      const [partition, group] = groups[i]!;
      if (this.groups.get(partition) !== group) return;
      held++;
      if (outcome.status === "rejected") {
        const { reason } = outcome;
        // A replica that could not catch up says why; the way round is said once, at the end.
        const lagging = reason instanceof CheckpointCatchUpError;
        behind ||= lagging;
        const why = lagging ? reason.summary : describeError(reason);
        failed.set(why, [...(failed.get(why) ?? []), partition]);
        failures++;
      } else {
        revision = Math.max(revision, outcome.value.revision);
        entries += outcome.value.entries;
        bytes += outcome.value.bytes;
      }
    });
    if (failures > 0) {
      const others = failures < held ? " (the others did)" : "";
      const reasons = [...failed].map(
        ([why, partitions]) => `partition${partitions.length > 1 ? "s" : ""} ${partitions.join(", ")}: ${why}`,
      );
      const hint = behind ? `; ${SERIALIZABLE_CHECKPOINT_HINT}` : "";
      throw new HomeKvError(
        "E_UNAVAILABLE",
        `${failures} of ${held} replicas here wrote no checkpoint${others}: ${reasons.join("; ")}${hint}`,
      );
    }
    return { revision, entries, bytes, atMs: Date.now(), durationMs: performance.now() - begun };
  }

  /** Stops every replica's work of its own (the node stops); resolves once their checkpoints under way are written. */
  async stop(): Promise<void> {
    await Promise.all([...this.groups.values()].map((group) => group.stop()));
  }

  /**
   * The replica's group stops here, its log becomes a tombstone, then its checkpoints go (a crash
   * between leaves checkpoints beside an empty log: PartitionGroup.open removes them).
   */
  private async retire(partition: number): Promise<void> {
    const group = this.groups.get(partition);
    this.groups.delete(partition);
    this.options.host.remove(partitionGroupId(partition));
    await group?.stop();
    await this.options.engine.retireGroup(partitionGroupId(partition));
    await removeCheckpoints(this.options.group.checkpoints.fs, this.dirOf(partition));
    this.options.log.info(`partition ${partition} moved away: its replica here is retired`);
  }

  private dirOf(partition: number): string {
    return `${this.options.partitionsDir}/${partition}`;
  }

  private run(task: () => Promise<void>): void {
    this.queue = this.queue
      .then(task)
      .catch((error) => this.options.log.error("starting or retiring a replica failed:", error));
  }

  /** Waits for the starts and retirements asked for so far (a close). */
  settled(): Promise<void> {
    return this.queue;
  }
}

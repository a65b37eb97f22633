import type { Timers } from "../../timers.ts";
import { Raft } from "../raft/raft.ts";
import type { PersistentRaftLog } from "../raft/storage.ts";
import type { NodeId } from "../raft/types.ts";
import type { LinkedGroup } from "./peer-link.ts";
import { RaftDriver, type ReplicatedStateMachine } from "./raft-driver.ts";
import type { RaftHost } from "./raft-host.ts";

/** What a node needs to run its replica of a group in its host. */
export interface HostedGroupOptions {
  host: RaftHost;
  /** This node's id in the group. */
  id: NodeId;
  /** The group's voters when it is founded (its log's configuration wins once it holds one). */
  voters: readonly NodeId[];
  log: PersistentRaftLog;
  random: () => number;
  tickMs: number;
  /** Whether this node takes member `id` for down (closed connections, the failure detector). */
  disconnected: (id: NodeId) => boolean;
  timers?: Timers;
  /** Whether the group goes quiet when idle (RaftOptions.quiesce); default true. */
  quiesce?: boolean;
  /** Whether this replica votes only as a member of its own configuration (RaftOptions.votesOnlyAsMember); default false. */
  votesOnlyAsMember?: boolean;
}

/**
 * Starts this node's replica of group `group` in the host: a Raft core (quiescing when idle, unless
 * told not to) over the group's log, driven by the host's clock, applying to `stateMachine`;
 * `snapshots`: its snapshot streams (a group whose snapshots stand for checkpoints on disk).
 */
export function hostGroup<R>(
  options: HostedGroupOptions,
  group: number,
  stateMachine: ReplicatedStateMachine<R>,
  snapshots?: LinkedGroup["snapshots"],
): { raft: Raft; driver: RaftDriver<R> } {
  const raft = new Raft({
    id: options.id,
    voters: [...options.voters],
    storage: options.log,
    random: options.random,
    quiesce: options.quiesce ?? true,
    votesOnlyAsMember: options.votesOnlyAsMember,
  });
  const driver = options.host.add(
    group,
    (outbox) =>
      new RaftDriver<R>({
        raft,
        storage: options.log,
        outbox,
        tickMs: options.tickMs,
        tickedByHost: true,
        disconnected: options.disconnected,
        timers: options.timers,
        stateMachine,
      }),
    snapshots ? { snapshots } : undefined,
  );
  return { raft, driver };
}

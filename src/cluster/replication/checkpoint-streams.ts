import type { FileSystem } from "../../io/fs/file-system.ts";
import { REPLICATED_CHECKPOINT_FILES } from "../../storage/checkpoint/checkpoint-format.ts";
import type { Timers } from "../../timers.ts";
import type { NodeId } from "../raft/types.ts";
import type { RaftDriver } from "./raft-driver.ts";
import { SnapshotReceiver } from "./snapshot-receiver.ts";
import { SNAPSHOT_STREAM_DEFAULTS, SnapshotSender, type SnapshotStreamLimits } from "./snapshot-sender.ts";
import type { StreamSlots } from "./stream-slots.ts";

/** A group's two ends of the snapshot stream, over the checkpoints in one directory. */
export interface CheckpointStreams {
  sender: SnapshotSender;
  receiver: SnapshotReceiver;
  close(): void;
}

/**
 * The snapshot streams of group `group` whose snapshots stand for the replicated checkpoints in
 * `dir` (member-checkpoints.ts): the sender reads the one a snapshot message names, the receiver
 * completes the leader's there and hands the message to the group's driver; outcomes go to it too.
 */
export function checkpointStreams(options: {
  group: number;
  fs: FileSystem;
  dir: string;
  /** Queues a payload to a member (the peer transport, by Raft id). */
  send: (to: NodeId, payload: Uint8Array) => void;
  /** The group's driver, once made (the streams are made first: the link takes them with the group). */
  driver: () => Pick<RaftDriver<unknown>, "receive" | "reportSnapshot"> | undefined;
  limits?: Partial<SnapshotStreamLimits>;
  /** Where the streams of the node's groups to one peer take turns. */
  slots?: StreamSlots;
  log: (line: string) => void;
  /** The stall timers' (default: the real ones). */
  timers?: Timers;
}): CheckpointStreams {
  const { group, fs, dir, send, log, timers } = options;
  const limits = { ...SNAPSHOT_STREAM_DEFAULTS, ...options.limits };
  const sender = new SnapshotSender({
    group,
    send,
    openCheckpoint: (index) => fs.openRead(`${dir}/${REPLICATED_CHECKPOINT_FILES.fileName(index)}`),
    report: (to, outcome) => options.driver()?.reportSnapshot(to, outcome),
    limits,
    slots: options.slots,
    log,
    timers,
  });
  const receiver = new SnapshotReceiver({
    group,
    fs,
    dir,
    send,
    deliver: (message) => options.driver()?.receive(message),
    stallTimeoutMs: limits.stallTimeoutMs,
    log,
    timers,
  });
  return {
    sender,
    receiver,
    close() {
      sender.close();
      receiver.close();
    },
  };
}

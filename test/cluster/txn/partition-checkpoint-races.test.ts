import { expect, test } from "bun:test";
import type { AppendFile } from "../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import {
  type CheckpointedReplica,
  history,
  leading,
  restart,
  startReplicas as startCheckpointedReplicas,
} from "./checkpointed-replicas.ts";

/** A MemoryFileSystem whose appends to a checkpoint being written (`*.rckpt.tmp`) wait while held: a slow disk. */
class SlowCheckpointDisk extends MemoryFileSystem {
  private held: Promise<void> | undefined;
  /** Appends waiting for the hold to be released. */
  waiting = 0;

  hold(): () => void {
    let release!: () => void;
    this.held = new Promise((resolve) => {
      release = resolve;
    });
    return () => {
      this.held = undefined;
      release();
    };
  }

  override async openAppend(path: string): Promise<AppendFile> {
    const file = await super.openAppend(path);
    if (!path.endsWith(".rckpt.tmp")) return file;
    const disk = this;
    return {
      get size() {
        return file.size;
      },
      async append(data) {
        const held = disk.held;
        if (held) {
          disk.waiting++;
          await held;
          disk.waiting--;
        }
        await file.append(data);
      },
      sync: () => file.sync(),
      truncate: (size) => file.truncate(size),
      close: () => file.close(),
    };
  }
}

type Replica = CheckpointedReplica<SlowCheckpointDisk>;

/**
 * What a partition's checkpoint holds against the Raft index it is named for, when entries are
 * applied while it is written (a real disk takes turns to write it; here appends to a checkpoint
 * being written wait while held). Three replicas in process, checkpointing only when asked.
 */
const startReplicas = () =>
  startCheckpointedReplicas({ logEntries: Number.MAX_SAFE_INTEGER, tailEntries: 0 }, () => new SlowCheckpointDisk());

const caughtUp = (replica: Replica, leader: Replica) =>
  waitFor(() => replica.group.driver.appliedIndex === leader.group.driver.appliedIndex, {
    what: "the follower to apply what the leader applied",
  });

/**
 * Starts a checkpoint of `replica` and holds it on the disk once it has pinned its state, runs
 * `meanwhile` (entries applied while it is written), then lets it finish.
 */
async function checkpointAcross(replica: Replica, meanwhile: () => Promise<void>): Promise<void> {
  const release = replica.fs.hold();
  const written = replica.group.checkpoint();
  await waitFor(() => replica.fs.waiting > 0, { what: "the checkpoint to be held writing" });
  try {
    await meanwhile();
  } finally {
    release();
  }
  await written;
}

test("a compaction applied while a checkpoint is written is not in the checkpoint: a late commit before it replays after a restart", async () => {
  const replicas = await startReplicas();
  const leader = await leading(replicas);
  const follower = replicas.find((r) => r !== leader)!;
  const oracle = leader.node.timestamps;
  // A transaction holds x; its commit timestamp is taken before a write of y lands above it.
  const startTs = await oracle.take(1);
  const prewrite = await leader.group.propose({
    type: "prewrite",
    startTs,
    primary: "x",
    expiresAtMs: Date.now() + 600_000,
    mutations: [{ key: "x", value: bytes("x1") }],
  });
  expect(prewrite).toEqual({ ok: true });
  const commitTs = await oracle.take(1);
  await leader.group.write([{ key: "y", value: bytes("y1") }]);
  await caughtUp(follower, leader);

  // The follower's checkpoint pins x locked; meanwhile x commits (late, below y) and history up to
  // the commit is compacted: both entries come after the checkpoint's index.
  await checkpointAcross(follower, async () => {
    const commit = await leader.group.propose({ type: "commit", startTs, commitTs, keys: ["x"], primary: "x" });
    expect(commit).toEqual({ ok: true });
    expect(await leader.group.compact(commitTs)).toBe(commitTs);
    await caughtUp(follower, leader);
  });

  // Restarted, the follower begins from that checkpoint and applies the commit and the compaction again.
  await restart(follower);
  await waitFor(
    () =>
      follower.group.store.revision === leader.group.store.revision &&
      follower.group.driver.appliedIndex === leader.group.driver.appliedIndex,
    {
      what: "the restarted follower to apply what the leader applied",
      timeoutMs: 5_000,
      detail: async () =>
        `follower at index ${follower.group.driver.appliedIndex}, leader at ${leader.group.driver.appliedIndex}; ` +
        (await follower.group.driver.nextTick().then(
          () => "the follower's group runs",
          (error) => `the follower's group stopped: ${error}`,
        )),
    },
  );
  expect(history(follower.group)).toBe(history(leader.group));
  expect(text(follower.group.store.read(["x"], follower.group.store.revision)[0]!)).toBe("x1");
}, 20_000);

test("a compaction applied while a checkpoint is written is not in the checkpoint: a write that read before it is taken alike after a restart", async () => {
  const replicas = await startReplicas();
  const leader = await leading(replicas);
  const follower = replicas.find((r) => r !== leader)!;
  const oracle = leader.node.timestamps;
  // A read-modify-write read at readAt; another key is written after it, before the checkpoint.
  const readAt = await oracle.take(1);
  await leader.group.write([{ key: "other", value: bytes("o1") }]);
  await caughtUp(follower, leader);

  await checkpointAcross(follower, async () => {
    // Taken: nothing wrote k since readAt, and readAt is above the compacted revision (0).
    const { result } = await leader.group.write([{ key: "k", value: bytes("k1") }], readAt);
    expect(result).toEqual({ ok: true });
    await leader.group.compact(readAt);
    await caughtUp(follower, leader);
  });

  await restart(follower);
  // One more write, so that the restarted follower has applied past both entries.
  await leader.group.write([{ key: "after", value: bytes("a1") }]);
  await waitFor(() => follower.group.driver.appliedIndex === leader.group.driver.appliedIndex, {
    what: "the restarted follower to apply what the leader applied",
    timeoutMs: 5_000,
  });
  const k = follower.group.store.read(["k"], follower.group.store.revision)[0];
  expect(k && text(k)).toBe("k1");
  expect(history(follower.group)).toBe(history(leader.group));
}, 20_000);

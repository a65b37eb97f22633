import { expect, test } from "bun:test";
import { oneAtATime } from "../../../src/cluster/replication/one-at-a-time.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { REPLICATED_CHECKPOINT_FILES } from "../../../src/storage/checkpoint/checkpoint-format.ts";
import { bytes } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import { CHECKPOINT_DIR, leading, startReplicas } from "./checkpointed-replicas.ts";

/**
 * A partition's checkpoints when the disk fails one, and when replicas take turns: three replicas in
 * process, checkpointing only when asked.
 */
test("a checkpoint asked for after one that failed is written at the index applied, not answered with the one before", async () => {
  const replicas = await startReplicas(
    { logEntries: Number.MAX_SAFE_INTEGER, tailEntries: 0 },
    () => new MemoryFileSystem(),
  );
  const leader = await leading(replicas);
  await leader.group.write([{ key: "a", value: bytes("1") }]);
  const first = await leader.group.checkpoint();
  await leader.group.write([{ key: "b", value: bytes("2") }]);
  leader.fs.injectFault({ op: "append", code: "ENOSPC", pathIncludes: ".rckpt.tmp", times: 1 });
  expect(await leader.group.checkpoint().catch((error: unknown) => String(error))).toContain("ENOSPC");

  // The disk has room again: the state as it stands now is written.
  const second = await leader.group.checkpoint();
  expect(second.revision).toBe(leader.group.store.revision);
  expect(second.revision).toBeGreaterThan(first.revision);
  const applied = leader.group.driver.appliedIndex;
  await waitFor(
    async () => (await leader.fs.list(CHECKPOINT_DIR)).includes(REPLICATED_CHECKPOINT_FILES.fileName(applied)),
    {
      what: `a checkpoint at index ${applied}`,
      timeoutMs: 1_000,
    },
  );
});

test("a checkpoint waits for its turn: replicas sharing turns (a node's) write one at a time", async () => {
  const turns = oneAtATime();
  const replicas = await startReplicas(
    { logEntries: Number.MAX_SAFE_INTEGER, tailEntries: 0 },
    () => new MemoryFileSystem(),
    turns,
  );
  const leader = await leading(replicas);
  await leader.group.write([{ key: "a", value: bytes("1") }]);
  // Another replica's checkpoint holds the turn.
  const other = Promise.withResolvers<void>();
  const held = turns(() => other.promise);
  let written = false;
  const checkpoint = leader.group.checkpoint().then((info) => {
    written = true;
    return info;
  });
  for (let tick = 0; tick < 5; tick++) await leader.group.driver.nextTick();
  expect(written).toBe(false);
  expect((await leader.fs.list(CHECKPOINT_DIR)).filter((name) => name.endsWith(".rckpt"))).toEqual([]);
  other.resolve();
  await held;
  expect((await checkpoint).revision).toBe(leader.group.store.revision);
});

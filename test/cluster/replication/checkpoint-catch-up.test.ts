import { expect, test } from "bun:test";
import {
  CheckpointCatchUpError,
  catchUpForCheckpoint,
  SERIALIZABLE_CHECKPOINT_HINT,
} from "../../../src/cluster/replication/member-checkpoints.ts";
import { ReadTimeoutError } from "../../../src/cluster/replication/raft-driver.ts";
import { HomeKvError, STORE_CLOSED_MESSAGE } from "../../../src/errors.ts";

/**
 * The Checkpoint call's catch-up on a cluster member: a ReadIndex round unless serializable; only a
 * round that timed out says that a serializable checkpoint goes round it (a member shutting down,
 * or a disk error, is not helped by one).
 */
test("a Checkpoint call waits for a ReadIndex round; serializable, it asks for none", async () => {
  let rounds = 0;
  const round = async () => {
    rounds++;
  };
  await catchUpForCheckpoint(undefined, round);
  await catchUpForCheckpoint({ serializable: false }, round);
  expect(rounds).toBe(2);
  await catchUpForCheckpoint({ serializable: true }, round);
  expect(rounds).toBe(2);
});

test("a round that timed out fails the call saying why and how to go round it; any other failure is passed on as it is", async () => {
  const timedOut = await catchUpForCheckpoint(undefined, () =>
    Promise.reject(new ReadTimeoutError("no linearizable read within 5000 ms: no leader confirmed")),
  ).catch((error: unknown) => error);
  expect(timedOut).toBeInstanceOf(CheckpointCatchUpError);
  expect((timedOut as HomeKvError).code).toBe("E_UNAVAILABLE");
  expect((timedOut as HomeKvError).message).toBe(
    "no checkpoint: this member could not catch up with its group's commit " +
      `(no linearizable read within 5000 ms: no leader confirmed); ${SERIALIZABLE_CHECKPOINT_HINT}`,
  );
  for (const other of [
    new HomeKvError("E_UNAVAILABLE", STORE_CLOSED_MESSAGE),
    new HomeKvError("E_DISK", "the Raft log failed: EIO"),
  ]) {
    const passed = await catchUpForCheckpoint(undefined, () => Promise.reject(other)).catch((error: unknown) => error);
    expect(passed).toBe(other);
  }
});

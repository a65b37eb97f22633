import { expect, test } from "bun:test";
import { Raft } from "../../../src/cluster/raft/raft.ts";
import { MemoryStorage } from "../../../src/cluster/raft/storage.ts";
import { positionIn } from "../../../src/cluster/replication/member-checkpoints.ts";
import { mulberry32 } from "../../../src/random.ts";

/**
 * Where a checkpoint stands in the Raft log (positionIn): the term of the entry at its index and the
 * members then — and no position while a leader's snapshot waits to be installed, when the log
 * restarts at the snapshot and the terms before it are no longer known.
 */
test("a checkpoint has no position while a leader's snapshot waits to be installed: refused by name, not an assertion", () => {
  const storage = new MemoryStorage();
  const follower = new Raft({ id: 2, voters: [1, 2, 3], storage, random: mulberry32(2) });
  const position = positionIn(follower);
  expect(position(0)).toEqual({ term: 0, conf: { voters: [1, 2, 3], learners: [] } });
  follower.step({
    type: "snapshot",
    from: 1,
    to: 2,
    term: 4,
    snapshot: { index: 30, term: 3, data: Uint8Array.of(1), conf: { voters: [1, 2, 3], learners: [] } },
  });
  expect(follower.installingSnapshot).toBe(true);
  expect(() => position(0)).toThrow("a leader's snapshot is being installed: no checkpoint until it is");
  // Once the driver has taken the Ready that installs it, positions are known again, from the snapshot on.
  const ready = follower.ready();
  storage.applySnapshot(ready.snapshot!);
  follower.advance(ready);
  expect(follower.installingSnapshot).toBe(false);
  expect(position(30)).toEqual({ term: 3, conf: { voters: [1, 2, 3], learners: [] } });
});

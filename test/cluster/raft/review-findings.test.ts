import { describe, expect, test } from "bun:test";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { Raft } from "../../../src/cluster/raft/raft.ts";
import { MemoryStorage } from "../../../src/cluster/raft/storage.ts";
import type { Entry } from "../../../src/cluster/raft/types.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";
import { ManualCluster } from "./manual-cluster.ts";

/**
 * Problems found by reviewing the Raft core against etcd-io/raft and Ongaro's dissertation, each
 * shown by the scenario that breaks it.
 */

const data = (text: string) => new TextEncoder().encode(text);
const ELECTION = 10;

describe("membership", () => {
  test("the only voter cannot be demoted to a learner: a group without voters could never commit again", () => {
    // One voter (1) and a learner (2).
    const c = new ManualCluster(2, { firstVoters: 1 });
    c.elect(1, [1]);
    expect(c.raft(1).proposeConfChange({ type: "addLearner", node: 2 })).toBe(true);
    c.settle();
    // Demoting node 1 would leave no voter at all: no quorum to commit the change itself, nor
    // anything after it (etcd's confchange refuses it: "removed all voters"), exactly as removing
    // the last voter is refused.
    const demoted = c.raft(1).proposeConfChange({ type: "addLearner", node: 1 });
    c.settle();
    for (let i = 0; i < 3 * ELECTION; i++) {
      for (const id of c.ids) c.tick(id);
      c.settle();
    }
    const leader = c.ids.find((id) => c.raft(id).role === "leader");
    const committed = leader === undefined ? undefined : c.raft(leader).status().commit;
    const wrote = leader !== undefined && c.raft(leader).propose(data("after"));
    c.settle();
    expect({
      demoted,
      voters: c.raft(1).confState().voters,
      wrote,
      committedMore: leader !== undefined && c.raft(leader).status().commit > committed!,
    }).toEqual({ demoted: false, voters: [1], wrote: true, committedMore: true });
  });
});

describe("owed appends", () => {
  test("a leader that commits its own removal tells the remaining voters that commit before it steps down", () => {
    // The commit that removes the leader is owed to the followers (appendsOwed); stepping down must
    // not cancel it, or they learn it only after an election among themselves, and meanwhile apply
    // nothing of it (etcd's leader broadcasts the commit in a Ready before it applies its removal).
    const c = new ManualCluster(3);
    c.elect(1);
    c.tick(1);
    c.settle();
    expect(c.raft(1).proposeConfChange({ type: "remove", node: 1 })).toBe(true);
    const removal = c.raft(1).status().lastIndex;
    c.settle();
    expect(c.raft(1).role).toBe("follower");
    expect(c.raft(1).status().commit).toBe(removal);
    expect([c.raft(2).status().commit, c.raft(3).status().commit]).toEqual([removal, removal]);
  });
});

describe("the Ready contract", () => {
  test("a Ready that installs a leader's snapshot must be synced: its acknowledgement promises the snapshot is durable", () => {
    const follower = new Raft({ id: 2, voters: [1, 2, 3], storage: new MemoryStorage(), random: mulberry32(7) });
    // The follower knows leader 1 of term 1 (a heartbeat), and has persisted that term.
    follower.step({ type: "heartbeat", from: 1, to: 2, term: 1, commit: 0, round: 0 });
    follower.advance(follower.ready());
    // The leader's log is compacted to 5: it sends the snapshot.
    const snapshot = { index: 5, term: 1, data: data("state at 5"), conf: { voters: [1, 2, 3], learners: [] } };
    follower.step({ type: "snapshot", from: 1, to: 2, term: 1, snapshot });
    const ready = follower.ready();
    expect(ready.snapshot).toEqual(snapshot);
    // Once the leader has this answer, it counts entries 1..5 as stored here: a crash that lost the
    // snapshot would leave them on fewer nodes than the leader counted (§3.8 of the dissertation:
    // a server answers only once what it acknowledges is on stable storage).
    expect(ready.messages).toContainEqual(expect.objectContaining({ type: "appendResp", index: 5, reject: false }));
    expect(ready.mustSync).toBe(true);
  });
});

describe("DurableRaftLog recovery", () => {
  const DIR = "/data/raft";
  const entry = (index: number, term: number): Entry => ({ index, term, data: data(`e${index}`) });

  test("a commit-only write left unsynced, then a crash in a compaction before the snapshot is in place: the log still opens", async () => {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, DIR);
    await log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1), entry(2, 1), entry(3, 1)]);
    // A Ready whose mustSync is false: only the commit index moved, written and not synced.
    await log.persist({ term: 1, vote: 1, commit: 3 }, [], false);
    // The compaction writes and syncs its new segment, then fails (or the process dies) before the
    // snapshot file is renamed into place.
    fs.injectFault({ op: "rename", code: "EIO", times: 1 });
    expect(await rejectionMessage(log.compact(2, data("state at 2"), { voters: [1], learners: [] }))).toMatch("EIO");
    // Power cut: the old segment keeps half of its unsynced hard-state record (a torn write). It is
    // no longer the last segment, and a torn record anywhere but the last segment reads as damage.
    fs.crash(() => 0.5);
    const reopened = await DurableRaftLog.open(fs, DIR);
    expect(reopened.entries(1, reopened.lastIndex() + 1)).toEqual([entry(1, 1), entry(2, 1), entry(3, 1)]);
    expect(reopened.hardState()).toEqual({ term: 1, vote: 1, commit: 3 });
  });

  test("a failed sync of the old segment or of the new one stops the compaction; the files reopen to the log as before", async () => {
    for (const after of [0, 1]) {
      const fs = new MemoryFileSystem();
      const log = await DurableRaftLog.open(fs, DIR);
      await log.persist({ term: 1, vote: 1, commit: 0 }, [entry(1, 1), entry(2, 1), entry(3, 1)]);
      await log.persist({ term: 1, vote: 1, commit: 3 }, [], false);
      fs.injectFault({ op: "sync", pathIncludes: ".raftlog", code: "EIO", times: 1, after });
      expect(await rejectionMessage(log.compact(2, data("state at 2"), { voters: [1], learners: [] }))).toMatch("EIO");
      expect(await rejectionMessage(log.persist(undefined, [entry(4, 1)]))).toMatch("must be reopened");
      fs.crash(() => 0.5);
      const reopened = await DurableRaftLog.open(fs, DIR);
      expect({
        after,
        snapshot: reopened.snapshot().index,
        entries: reopened.entries(1, reopened.lastIndex() + 1),
      }).toEqual({ after, snapshot: 0, entries: [entry(1, 1), entry(2, 1), entry(3, 1)] });
    }
  });
});

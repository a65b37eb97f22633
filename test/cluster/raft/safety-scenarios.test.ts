import { describe, expect, test } from "bun:test";
import { Raft } from "../../../src/cluster/raft/raft.ts";
import { MemoryStorage } from "../../../src/cluster/raft/storage.ts";
import { type Message, NONE } from "../../../src/cluster/raft/types.ts";
import { mulberry32 } from "../../../src/random.ts";
import { between, ManualCluster } from "./manual-cluster.ts";

const data = (text: string) => new TextEncoder().encode(text);
const ELECTION = 10;

/**
 * Scenarios written for bugs the seeded simulation let through (`npm run mutants` plants them):
 * each needs a message held back across an election or a membership change, a partition that
 * spares one follower, or a leader's log that never arises in a run of today's leader.
 */
describe("safety scenarios", () => {
  test("a vote answered in an older term is not counted in a newer one: one leader per term", () => {
    const c = new ManualCluster(3);
    // Node 1 campaigns; node 2's vote for it is held back, node 3's is lost.
    c.raft(1).campaignNow();
    const late = c.settleHolding(
      (m) => m.type === "voteResp" && m.from === 2,
      (m) => m.type !== "voteResp",
    );
    expect(late.length).toBe(1);
    const lateTerm = late[0]!.term;
    expect(c.raft(1).role).toBe("candidate");
    // Node 1 tries again at the next term; its vote requests are lost, so it stays a candidate.
    c.raft(1).campaignNow();
    c.settle((m) => m.type === "preVote" || m.type === "preVoteResp");
    const term = c.raft(1).term;
    expect(term).toBe(lateTerm + 1);
    expect(c.raft(1).role).toBe("candidate");
    // Nodes 2 and 3 elect node 3 in that same term.
    c.raft(3).campaignNow();
    c.settle(between([2, 3]));
    expect(c.raft(3).role).toBe("leader");
    expect(c.raft(3).term).toBe(term);
    // The old vote arrives: it was given in an older term, and elects nobody now.
    c.deliver(late[0]!);
    expect(c.ids.filter((id) => c.raft(id).role === "leader" && c.raft(id).term === term)).toEqual([3]);
  });

  test("ReadIndex needs a quorum of five: the leader with one follower serves no read, with two it does", () => {
    const c = new ManualCluster(5);
    c.elect(1);
    c.raft(1).propose(data("x"));
    c.settle();
    // Nodes 2 and 3 answer the read's heartbeat round: with the leader, three of five.
    const confirmed = c.raft(1).readIndex()!;
    c.settle(between([1, 2, 3]));
    expect(c.reads.map((read) => read.request)).toEqual([confirmed]);
    // Partition {1, 2} | {3, 4, 5}: the majority elects node 3 and commits a write.
    c.elect(3, [3, 4, 5]);
    c.raft(3).propose(data("y"));
    c.settle(between([3, 4, 5]));
    const written = c.raft(3).status().lastIndex;
    expect(c.raft(3).status().commit).toBe(written);
    // Node 1 still thinks it leads (its CheckQuorum has not run out); node 2 alone answers it.
    expect(c.raft(1).role).toBe("leader");
    const stale = c.raft(1).readIndex()!;
    c.settle(between([1, 2]));
    // Served, it would read at an index without "y", acknowledged before it was asked.
    expect(c.reads.filter((read) => read.request === stale)).toEqual([]);
  });

  test("a follower cut off from the leader alone does not unseat it: its peers, hearing the leader, refuse its pre-votes", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    const term = c.raft(1).term;
    // Only the link between 1 and 3 is down; 3 reaches 2, and 2 reaches 1.
    const linkDown = (m: Message) => !((m.from === 1 && m.to === 3) || (m.from === 3 && m.to === 1));
    for (let tick = 0; tick < 5 * ELECTION; tick++) {
      for (const id of c.ids) c.tick(id);
      c.settle(linkDown);
    }
    expect(c.raft(1).role).toBe("leader");
    expect(c.ids.map((id) => c.raft(id).term)).toEqual([term, term, term]);
    expect(c.raft(2).leader).toBe(1);
  });

  test("a pre-vote answered by a node removed since does not count: the candidate's term does not rise", () => {
    const c = new ManualCluster(4);
    c.elect(1);
    const term = c.raft(1).term;
    // Node 4 stops hearing the leader, so it answers node 3's pre-vote, whose answer is held back.
    c.tick(4, ELECTION);
    c.settle(() => false);
    c.raft(3).campaignNow();
    const late = c.settleHolding(
      (m) => m.type === "preVoteResp" && m.from === 4,
      (m) => m.from === 3 && m.to === 4,
    );
    expect(late.map((m) => m.type === "preVoteResp" && !m.reject)).toEqual([true]);
    // The leader removes node 4; node 3 follows it again and learns the change.
    expect(c.raft(1).proposeConfChange({ type: "remove", node: 4 })).toBe(true);
    c.settle(between([1, 2, 3]));
    expect(c.raft(3).confState().voters).toEqual([1, 2, 3]);
    // Node 3 campaigns again, unheard; then node 4's old grant arrives. Among voters {1, 2, 3}
    // only node 3 itself would vote for it: no election may start.
    c.raft(3).campaignNow();
    c.settle(() => false);
    c.deliver(late[0]!);
    expect(c.raft(3).role).toBe("preCandidate");
    expect(c.raft(3).term).toBe(term);
  });

  test("a follower commits no further than an append matched: an uncommitted entry of an old term after it stays uncommitted", () => {
    // Today's leader never sends such an append (its first accepted append to a follower always
    // ends at or after the first conflict), so the follower is checked alone, against the rule of
    // Figure 2: commit = min(leaderCommit, index of the last new entry).
    const c = new ManualCluster(5, { entriesPerMessageMax: 1 });
    c.elect(1);
    // Node 1 gets "a" to every node and "b" to node 2 alone, then crashes before anyone learns that
    // "a" is committed.
    c.raft(1).propose(data("a"));
    c.raft(1).propose(data("b"));
    const a = c.raft(1).status().lastIndex - 1;
    c.settle((m) => m.type === "append" && (m.to === 2 || m.entries.every((e) => e.index <= a)));
    expect(c.raft(2).status()).toMatchObject({ lastIndex: a + 1, commit: a - 1 });
    c.crash(1);
    // Nodes 3, 4 and 5 elect node 3, which commits its own entries at and after b's index.
    c.elect(3, [3, 4, 5]);
    c.raft(3).propose(data("c"));
    c.settle(between([3, 4, 5]));
    const leader = c.raft(3).status();
    expect(leader.commit).toBeGreaterThan(a + 1);
    expect(c.raft(3).termAt(a + 1)).not.toBe(c.raft(2).termAt(a + 1));
    // Node 3 resends entry a (which node 2 has) with its commit index: node 2's log matches up to a
    // only; its "b" at a + 1 is not the leader's entry there and must not be committed.
    c.deliver({
      type: "append",
      from: 3,
      to: 2,
      term: leader.term,
      prevIndex: a - 1,
      prevTerm: c.raft(3).termAt(a - 1),
      entries: c.storages.get(3)!.entries(a, a + 1),
      commit: leader.commit,
    });
    expect(c.raft(2).status().commit).toBe(a);
    // The leader's next appends replace "b", and node 2 commits what the leader did.
    c.tick(3);
    c.settle(between([2, 3, 4, 5]));
    expect(c.raft(2).status().commit).toBe(leader.commit);
    expect(c.raft(2).termAt(a + 1)).toBe(c.raft(3).termAt(a + 1));
  });

  test("a vote given in a term the node already knows must be synced before it is sent: a crash must not let it vote again", () => {
    const node = new Raft({ id: 2, voters: [1, 2, 3], storage: new MemoryStorage(), random: mulberry32(2) });
    // Node 2 learns term 1 from leader 3's heartbeat: a new term, synced; no vote yet.
    node.step({ type: "heartbeat", from: 3, to: 2, term: 1, commit: 0, round: 0 });
    const learned = node.ready();
    expect(learned.hardState).toEqual({ term: 1, vote: NONE, commit: 0 });
    node.advance(learned);
    // Then candidate 1's request of that same term: only the vote changes, and it must reach the disk.
    node.step({ type: "vote", from: 1, to: 2, term: 1, lastIndex: 0, lastTerm: 0, transfer: false });
    const voted = node.ready();
    expect(voted.messages).toMatchObject([{ type: "voteResp", to: 1, term: 1, reject: false }]);
    expect(voted.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(voted.mustSync).toBe(true);
  });

  test("a late snapshot whose last entry this follower already holds moves its commit, and keeps the entries after it", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    // Ten entries reach node 2 in appends that carry the old commit index; then node 2 hears
    // nothing more, so its log runs past its commit index.
    for (let i = 0; i < 10; i++) c.raft(1).propose(data(`w${i}`));
    c.flush();
    const appends = c.queue.filter((m) => m.type === "append" && m.to === 2);
    c.queue = [];
    for (const append of appends) c.deliver(append);
    c.queue = [];
    const follower = c.raft(2).status();
    expect(follower.lastIndex).toBe(c.raft(1).status().lastIndex);
    expect(follower.commit).toBeLessThan(5);
    // A snapshot at index 5 (sent earlier, delivered late, or duplicated) arrives now.
    const index = 5;
    c.deliver({
      type: "snapshot",
      from: 1,
      to: 2,
      term: c.raft(1).term,
      snapshot: { index, term: c.raft(1).termAt(index), data: data("state at 5"), conf: c.raft(1).confState(index) },
    });
    // Its entries after 5 match the leader's: dropping them would undo what the leader may have
    // counted on to commit. Only the commit index moves.
    expect(c.raft(2).status()).toMatchObject({ lastIndex: follower.lastIndex, commit: index, snapshotIndex: 0 });
    expect(c.storages.get(2)!.lastIndex()).toBe(follower.lastIndex);
  });

  test("with votesOnlyAsMember, a replica made again empty under a removed one's id grants no vote: a member behind the removal is not elected by it", () => {
    // Node 1 is behind: its log still makes node 3 a voter of {1, 2, 3}, though the group removed
    // node 3 since, and node 3's replica, retired, was made again empty (its tombstone: a later
    // term, no log, no vote). Node 1 asks it for a vote.
    const request = (type: "preVote" | "vote"): Message => ({
      type,
      from: 1,
      to: 3,
      term: 8,
      lastIndex: 33,
      lastTerm: 5,
      transfer: false,
    });
    const again = (votesOnlyAsMember: boolean, voters: number[] = []) => {
      const storage = new MemoryStorage();
      storage.setHardState({ term: 6, vote: NONE, commit: 0 });
      return new Raft({ id: 3, voters, storage, random: mulberry32(3), votesOnlyAsMember });
    };
    const answers = (raft: Raft) =>
      (["preVote", "vote"] as const).map((type) => {
        raft.step(request(type));
        const ready = raft.ready();
        raft.advance(ready);
        return ready.messages.map((m) => ("reject" in m ? m.reject : undefined));
      });
    // Without the option the empty replica elects node 1 with its own vote: a majority of {1, 2, 3}.
    expect(answers(again(false))).toEqual([[false], [false]]);
    expect(answers(again(true))).toEqual([[true], [true]]);
    // A member of its own configuration votes as before: a voter, and a learner (one promoted that
    // has not heard so yet may be needed for a quorum of the new configuration).
    expect(answers(again(true, [1, 2, 3]))).toEqual([[false], [false]]);
    const learner = new MemoryStorage();
    learner.applySnapshot({ index: 20, term: 5, data: new Uint8Array(0), conf: { voters: [1, 2], learners: [3] } });
    learner.setHardState({ term: 6, vote: NONE, commit: 20 });
    expect(
      answers(new Raft({ id: 3, voters: [], storage: learner, random: mulberry32(3), votesOnlyAsMember: true })),
    ).toEqual([[false], [false]]);
  });
});

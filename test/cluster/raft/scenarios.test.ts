import { describe, expect, test } from "bun:test";
import type { Message } from "../../../src/cluster/raft/types.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { between, ManualCluster } from "./manual-cluster.ts";

const ELECTION = 10;

describe("the paper's scenarios", () => {
  test("Figure 8: an entry of an old term is not committed by counting replicas", () => {
    // One entry per append, so that an old entry can travel without the new leader's empty one.
    const c = new ManualCluster(5, { entriesPerMessageMax: 1 });
    // (a) S1 leads and gets entry "a" onto S2 only.
    c.elect(1);
    c.raft(1).propose(bytes("a"));
    c.settle((m) => m.type !== "append" || m.to === 2);
    const index = c.raft(1).status().lastIndex;
    expect(c.raft(2).status().lastIndex).toBe(index);
    // (b) S1 crashes; S5 leads a newer term with S3 and S4 and takes "b" at the same index, alone.
    c.crash(1);
    // (Its votes arrive; its appends, the empty entry of its term included, are all lost.)
    c.elect(5, [3, 4, 5], (m) => between([3, 4, 5])(m) && m.type !== "append");
    c.raft(5).propose(bytes("b"));
    c.settle(() => false);
    expect(c.raft(5).status().lastIndex).toBe(index + 1);
    // (c) S5 crashes; S1 returns and leads a still newer term with S2 and S3, and copies "a" to S3:
    // "a" is now on a majority (S1, S2, S3), yet it must not be committed — S5 could still win.
    // S1's new empty entry reaches S2 but never S3 (an append S3 must reject gets through: it is how
    // S1 learns to send "a"), so "a" is on three nodes, the entry of S1's term on two.
    c.crash(5);
    c.start(1);
    const newTermTo3 = (m: Message) =>
      m.to === 3 &&
      m.type === "append" &&
      c.storages.get(m.to)!.lastIndex() >= m.prevIndex &&
      m.entries.some((e) => e.term === m.term);
    const withoutNewTerm = (m: Message) => between([1, 2, 3])(m) && !newTermTo3(m);
    c.elect(1, [1, 2, 3], withoutNewTerm);
    c.tick(1);
    c.settle(withoutNewTerm);
    const term = c.raft(1).term;
    expect(term).toBeGreaterThan(c.storages.get(5)!.hardState().term);
    expect([2, 3].map((id) => c.storages.get(id)!.term(index))).toEqual([
      c.raft(1).termAt(index),
      c.raft(1).termAt(index),
    ]);
    expect(c.raft(1).status().commit).toBeLessThan(index);
    // Once an entry of S1's own term reaches a majority, both commit together.
    c.tick(1);
    c.settle(between([1, 2, 3]));
    expect(c.raft(1).status().commit).toBeGreaterThanOrEqual(index + 1);
    expect(text(c.storages.get(1)!.entries(index, index + 1)[0]!.data)).toBe("a");
  });

  test("Figure 7: a leader brings followers with missing, extra and conflicting entries in line, a term per round trip", () => {
    const c = new ManualCluster(3);
    // Node 3 leads terms with many entries that only it ever holds (crashing before sending them).
    for (let round = 0; round < 3; round++) {
      c.elect(3);
      for (let i = 0; i < 20; i++) c.raft(3).propose(bytes(`lost-${round}-${i}`));
      c.flush();
      c.queue = [];
    }
    // Node 1 leads a newer term with node 2 and writes other entries.
    c.elect(1, [1, 2]);
    for (let i = 0; i < 5; i++) c.raft(1).propose(bytes(`kept-${i}`));
    c.settle(between([1, 2]));
    const divergent = c.raft(3).status().lastIndex;
    expect(divergent).toBeGreaterThan(60);
    // Now node 3 hears from node 1: count the round trips the repair takes.
    let rejections = 0;
    c.tick(1); // a heartbeat makes node 1 probe node 3
    c.settle((m: Message) => {
      if (m.type === "appendResp" && m.reject) rejections++;
      return true;
    });
    expect(
      c.storages
        .get(3)!
        .entries(1, c.storages.get(3)!.lastIndex() + 1)
        .map((e) => text(e.data)),
    ).toEqual(
      c.storages
        .get(1)!
        .entries(1, c.storages.get(1)!.lastIndex() + 1)
        .map((e) => text(e.data)),
    );
    // One rejection per conflicting term at most, not one per entry.
    expect(rejections).toBeLessThanOrEqual(4);
  });

  test("a partitioned leader steps down by CheckQuorum, and its uncommitted entries are gone after the heal", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    c.raft(1).propose(bytes("committed"));
    c.settle();
    // Cut node 1 off: it takes a write it can never commit.
    c.raft(1).propose(bytes("orphan"));
    c.settle(() => false);
    c.tick(1, 2 * ELECTION);
    c.settle(() => false);
    expect(c.raft(1).role).toBe("follower");
    // The others elect a leader and move on.
    c.elect(2, [2, 3]);
    c.raft(2).propose(bytes("after"));
    c.settle(between([2, 3]));
    // Heal: node 1 follows and its orphan entry is replaced.
    c.tick(2);
    c.settle();
    const log = c.storages
      .get(1)!
      .entries(1, c.storages.get(1)!.lastIndex() + 1)
      .map((e) => text(e.data));
    expect(log).toContain("after");
    expect(log).not.toContain("orphan");
    expect(c.raft(1).leader).toBe(2);
  });

  test("PreVote: a node back from a partition with ticks to spare does not disrupt the leader", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    const term = c.raft(1).term;
    // Node 3 is cut off long enough to campaign many times.
    for (let i = 0; i < 10 * ELECTION; i++) {
      c.tick(3);
      c.settle((m) => m.from !== 3 && m.to !== 3);
    }
    expect(c.raft(3).term).toBe(term); // pre-votes that found no quorum raised no term
    c.tick(1);
    c.settle();
    expect(c.raft(1).role).toBe("leader");
    expect(c.raft(1).term).toBe(term);
    expect(c.raft(3).leader).toBe(1);
  });

  test("a leader transfer to a lagging follower waits for it to catch up, then hands over", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    for (let i = 0; i < 5; i++) c.raft(1).propose(bytes(`w${i}`));
    c.settle((m) => m.to !== 3 && m.from !== 3);
    c.raft(1).transferLeadership(3);
    expect(c.raft(1).propose(bytes("during"))).toBe(false);
    c.settle();
    expect(c.raft(3).role).toBe("leader");
    expect(c.raft(1).leader).toBe(3);
    expect(c.raft(3).status().lastIndex).toBeGreaterThanOrEqual(6);
  });

  test("ReadIndex: served only once a quorum confirms the leader; a deposed leader serves none", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    c.raft(1).propose(bytes("x"));
    c.settle();
    const own = c.raft(1).readIndex()!;
    c.settle();
    expect(c.reads).toEqual([{ node: 1, index: c.raft(1).status().commit, request: own }]);
    // A follower's read goes through the leader.
    const forwarded = c.raft(2).readIndex()!;
    c.settle();
    expect(c.reads.at(-1)).toEqual({ node: 2, index: c.raft(1).status().commit, request: forwarded });
    // Partitioned, the old leader cannot confirm itself: no read comes out, even after a new leader wrote.
    const cutOff = c.raft(1).readIndex()!;
    c.settle(() => false);
    c.elect(2, [2, 3]);
    c.raft(2).propose(bytes("y"));
    c.settle(between([2, 3]));
    c.tick(1, 3);
    c.settle(() => false);
    expect(c.reads.some((read) => read.request === cutOff)).toBe(false);
  });

  test("ReadIndex: request ids are unique across nodes and restarts; a late answer meant for another read releases nothing", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    c.raft(1).propose(bytes("x"));
    c.settle();
    // Node 2 forwards a read; the leader's answer is held back.
    const before = c.raft(2).readIndex()!;
    const late: Message[] = [];
    c.settle((m) => {
      if (m.type !== "readIndexResp") return true;
      late.push(m);
      return false;
    });
    expect(late.length).toBe(1);
    // Node 2 restarts and asks again: its new id differs from the old one and from node 3's.
    c.crash(2);
    c.start(2);
    c.tick(1);
    c.settle();
    const after = c.raft(2).readIndex()!;
    const other = c.raft(3).readIndex()!;
    expect(new Set([before, after, other]).size).toBe(3);
    // The answer to the old request arrives now: it is not taken for the new one.
    const reads = c.reads.length;
    c.raft(2).step(late[0]!);
    c.flush();
    expect(c.reads.length).toBe(reads);
    c.settle();
    expect(c.reads.map((read) => read.request)).toEqual(expect.arrayContaining([after, other]));
    expect(c.reads.some((read) => read.request === before)).toBe(false);
  });

  test("InstallSnapshot: a follower behind a compacted log gets the snapshot, then the entries after it", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    for (let i = 0; i < 20; i++) c.raft(1).propose(bytes(`w${i}`));
    c.settle((m) => m.to !== 3 && m.from !== 3);
    const leaderStorage = c.storages.get(1)!;
    const compactedTo = c.raft(1).status().applied;
    leaderStorage.compact(compactedTo, bytes(`state at ${compactedTo}`), c.raft(1).confState(compactedTo));
    c.raft(1).propose(bytes("after"));
    let snapshots = 0;
    c.tick(1);
    c.settle((m) => {
      if (m.type === "snapshot") snapshots++;
      return true;
    });
    expect(snapshots).toBe(1);
    const follower = c.storages.get(3)!;
    expect(follower.snapshot().index).toBe(compactedTo);
    expect(text(follower.snapshot().data)).toBe(`state at ${compactedTo}`);
    expect(follower.entries(compactedTo + 1, follower.lastIndex() + 1).map((e) => text(e.data))).toEqual(["after"]);
    expect(c.raft(3).status().commit).toBe(c.raft(1).status().commit);
  });

  test("a learner receives the log without voting, then is promoted and counts in the quorum", () => {
    const c = new ManualCluster(4, { firstVoters: 3 });
    c.elect(1, [1, 2, 3]);
    for (let i = 0; i < 5; i++) c.raft(1).propose(bytes(`w${i}`));
    c.settle();
    expect(c.raft(4).status().lastIndex).toBe(0); // not a member: nobody sends it anything
    expect(c.raft(1).proposeConfChange({ type: "addLearner", node: 4 })).toBe(true);
    expect(c.raft(1).proposeConfChange({ type: "addVoter", node: 4 })).toBe(false); // one change at a time
    c.settle();
    expect(c.raft(4).status().lastIndex).toBe(c.raft(1).status().lastIndex);
    expect(c.raft(1).confState()).toEqual({ voters: [1, 2, 3], learners: [4] });
    // A learner never campaigns, however long it goes without a leader.
    c.tick(4, 100);
    expect(c.raft(4).role).toBe("follower");
    c.queue = [];
    expect(c.raft(1).proposeConfChange({ type: "addVoter", node: 4 })).toBe(true);
    c.settle();
    expect(c.raft(1).confState()).toEqual({ voters: [1, 2, 3, 4], learners: [] });
    // Four voters: a write now needs three of them; with 2 and 3 cut off it cannot commit.
    const committed = c.raft(1).status().commit;
    c.raft(1).propose(bytes("needs three"));
    c.settle((m) => ![2, 3].includes(m.to) && ![2, 3].includes(m.from));
    expect(c.raft(1).status().commit).toBe(committed);
    c.tick(1);
    c.settle();
    expect(c.raft(1).status().commit).toBe(committed + 1);
  });

  test("single-server change before the leader's own-term commit (Ongaro, raft-dev 2015): refused, so two leaders never commit different entries at one index", () => {
    // Four voters and a learner (5).
    const c = new ManualCluster(5, { firstVoters: 4 });
    c.elect(1, [1, 2, 3, 4]);
    expect(c.raft(1).proposeConfChange({ type: "addLearner", node: 5 })).toBe(true);
    c.settle();
    // Leader 1's addVoter(5) reaches node 5 only.
    expect(c.raft(1).proposeConfChange({ type: "addVoter", node: 5 })).toBe(true);
    const changeIndex = c.raft(1).status().lastIndex;
    c.settle((m) => m.from === 1 && m.to === 5 && m.type === "append");
    expect(c.raft(5).status().lastIndex).toBe(changeIndex);
    // Node 2 wins term 2 with 3 and 4 (a majority of {1,2,3,4}) and, before its own empty entry
    // has committed, proposes remove(1): refused until then (etcd: pendingConfIndex).
    c.elect(2, [2, 3, 4], (m) => between([2, 3, 4])(m) && m.type !== "append");
    const accepted = c.raft(2).proposeConfChange({ type: "remove", node: 1 });
    // Had it been taken, its entries would commit on 2 and 3 alone (a majority of {2,3,4}): deliver
    // node 2's appends to node 3 only, as the bug needs.
    c.tick(2);
    c.settle((m) => (m.from === 2 && m.to === 3) || (m.from === 3 && m.to === 2));
    // Node 1 restarts (its log and term kept), wins term 3 with 4 and 5 (a majority of
    // {1,2,3,4,5}, its configuration) and commits its log.
    c.crash(1);
    c.start(1);
    c.elect(1, [1, 4, 5]);
    c.tick(1);
    c.settle(between([1, 4, 5]));
    // Whatever each leader committed, no index holds two different committed entries.
    const committedEntry = (id: number, index: number) => {
      const entry = c.storages.get(id)!.entries(index, index + 1)[0]!;
      return `${entry.term}:${entry.conf?.type ?? text(entry.data)}`;
    };
    const shared = Math.min(c.raft(1).status().commit, c.raft(2).status().commit);
    for (let index = 1; index <= shared; index++) {
      expect(committedEntry(2, index)).toBe(committedEntry(1, index));
    }
    expect(accepted).toBe(false);
    // Once an entry of its own term has committed, a leader may change members again.
    expect(c.raft(1).termAt(c.raft(1).status().commit)).toBe(c.raft(1).term);
    expect(c.raft(1).proposeConfChange({ type: "remove", node: 2 })).toBe(true);
  });

  test("removing the current leader: it steps down once the removal commits, and the others elect a leader", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    expect(c.raft(1).proposeConfChange({ type: "remove", node: 1 })).toBe(true);
    c.settle();
    expect(c.raft(1).role).toBe("follower");
    expect(c.raft(2).confState().voters).toEqual([2, 3]);
    // Node 1 no longer campaigns; nodes 2 and 3 elect one of themselves and go on without it.
    c.tick(1, 100);
    c.settle(() => false);
    expect(c.raft(1).role).toBe("follower");
    c.elect(2, [2, 3]);
    c.raft(2).propose(bytes("without 1"));
    c.settle(between([2, 3]));
    expect(
      text(c.storages.get(3)!.entries(c.storages.get(3)!.lastIndex(), c.storages.get(3)!.lastIndex() + 1)[0]!.data),
    ).toBe("without 1");
  });

  test("a node back with a higher term and a stale log (a transfer that failed while it was cut off) cannot win", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    c.raft(1).propose(bytes("before"));
    c.settle();
    // The leader hands over to node 3, which campaigns at a higher term without PreVote (a
    // transfer), but nothing it sends arrives: it is cut off from here on.
    c.raft(1).transferLeadership(3);
    c.settle((m) => m.from !== 3);
    const cutOff = (m: Message) => m.from !== 3 && m.to !== 3;
    const highTerm = c.raft(3).term;
    expect(highTerm).toBe(c.raft(1).term + 1);
    // Node 1 gives up the transfer after an election timeout and goes on with node 2.
    for (let i = 0; i < 2 * ELECTION; i++) {
      c.tick(1);
      c.settle(cutOff);
    }
    expect(c.raft(1).role).toBe("leader");
    c.raft(1).propose(bytes("while 3 was away"));
    c.settle(cutOff);
    const committed = c.raft(1).status().commit;
    // Node 3 returns. Its higher term unseats node 1, but its log lacks the last commit: it cannot
    // win, and 1 or 2 leads a later term with every committed entry.
    for (
      let round = 0;
      round < 10 && !c.ids.some((id) => c.raft(id).role === "leader" && c.raft(id).term > highTerm);
      round++
    ) {
      for (const id of c.ids) c.tick(id, ELECTION);
      c.settle();
    }
    const leader = c.ids.find((id) => c.raft(id).role === "leader")!;
    expect([1, 2]).toContain(leader);
    expect(c.raft(leader).term).toBeGreaterThan(highTerm);
    c.raft(leader).propose(bytes("after"));
    c.settle();
    const log = c.storages
      .get(3)!
      .entries(1, c.storages.get(3)!.lastIndex() + 1)
      .map((e) => text(e.data));
    expect(log).toContain("while 3 was away");
    expect(log.at(-1)).toBe("after");
    expect(c.raft(3).status().commit).toBeGreaterThan(committed);
  });
});

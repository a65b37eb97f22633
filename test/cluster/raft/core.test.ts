import { describe, expect, test } from "bun:test";
import { Raft } from "../../../src/cluster/raft/raft.ts";
import { MemoryStorage } from "../../../src/cluster/raft/storage.ts";
import type { Message } from "../../../src/cluster/raft/types.ts";
import { mulberry32 } from "../../../src/random.ts";
import { between, ManualCluster } from "./manual-cluster.ts";

const data = (text: string) => new TextEncoder().encode(text);
const ELECTION = 10;

/** The core's surface as a caller (the driver loop) uses it: misuse throws, not corrupts. */
describe("the Ready contract", () => {
  test("ready() twice without advance() throws; advance() takes only the Ready handed out", () => {
    const raft = new Raft({ id: 1, voters: [1], storage: new MemoryStorage(), random: mulberry32(1) });
    raft.campaignNow();
    const ready = raft.ready();
    expect(() => raft.ready()).toThrow("ready() again before advance()");
    expect(() => raft.advance({ ...ready })).toThrow("not the one handed out last");
    raft.advance(ready);
    expect(() => raft.ready()).not.toThrow();
  });

  test("mustSync: new entries or a new term or vote must reach the disk; a commit index alone need not", () => {
    const voter = new Raft({ id: 2, voters: [1, 2, 3], storage: new MemoryStorage(), random: mulberry32(2) });
    voter.step({ type: "vote", from: 1, to: 2, term: 1, lastIndex: 0, lastTerm: 0, transfer: false });
    const voted = voter.ready();
    expect(voted.hardState).toEqual({ term: 1, vote: 1, commit: 0 });
    expect(voted.mustSync).toBe(true);

    const c = new ManualCluster(3);
    c.elect(1);
    c.raft(1).propose(data("x"));
    c.flush();
    const append = c.queue.find((m) => m.type === "append" && m.to === 2)!;
    c.queue = [];
    const follower = c.raft(2);
    follower.step(append);
    const appended = follower.ready();
    const last = c.raft(1).status().lastIndex;
    expect(appended.entries.map((e) => e.index)).toEqual([last]);
    expect(appended.mustSync).toBe(true);
    c.storages.get(2)!.append(appended.entries);
    follower.advance(appended);
    for (const m of appended.messages) c.raft(1).step(m);
    expect(c.raft(1).status().commit).toBe(last);
    c.flush();
    c.queue = [];
    c.tick(1);
    c.flush();
    const heartbeat = c.queue.find((m) => m.type === "heartbeat" && m.to === 2)!;
    c.queue = [];
    follower.step(heartbeat);
    const committed = follower.ready();
    expect(committed.entries).toEqual([]);
    expect(committed.hardState?.commit).toBe(last);
    expect(committed.mustSync).toBe(false);
    follower.advance(committed);
  });

  test("proposeAll: several entries at consecutive indexes of the leader's term, all or none", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    const before = c.raft(1).lastIndex;
    expect(c.raft(1).proposeAll([data("a"), data("b"), data("c")])).toBe(true);
    expect(c.raft(1).lastIndex).toBe(before + 3);
    // One more on its own lands right after them (the log grows in place at its end).
    expect(c.raft(1).propose(data("d"))).toBe(true);
    const pending = c.raft(1).ready();
    const appended = pending.entries.filter((e) => e.index > before);
    expect(appended.map((e) => [e.index, e.term, new TextDecoder().decode(e.data!)])).toEqual([
      [before + 1, 1, "a"],
      [before + 2, 1, "b"],
      [before + 3, 1, "c"],
      [before + 4, 1, "d"],
    ]);
    c.storages.get(1)!.append(pending.entries);
    c.queue.push(...pending.messages);
    c.raft(1).advance(pending);
    c.settle();
    expect(c.raft(1).status().commit).toBe(before + 4);
    for (const id of [2, 3]) expect(c.raft(id).lastIndex).toBe(before + 4);
    const follower = c.raft(2);
    const end = follower.lastIndex;
    expect(follower.proposeAll([data("x"), data("y")])).toBe(false);
    expect(follower.lastIndex).toBe(end);
  });

  test("status() is a copy: changing it changes nothing in the core", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    const status = c.raft(1).status() as unknown as { term: number; progress: Map<number, unknown> };
    status.term = 99;
    status.progress.clear();
    expect(c.raft(1).status().term).toBe(1);
    expect(c.raft(1).status().progress.size).toBe(2);
    expect(c.raft(1).status()).toMatchObject({ id: 1, role: "leader", leader: 1, vote: 1 });
  });
});

describe("flow control", () => {
  test("a follower receiving a snapshot is not sent it again by every heartbeat; the transport's report resumes it", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    for (let i = 0; i < 10; i++) c.raft(1).propose(data(`w${i}`));
    c.settle((m) => m.to !== 3 && m.from !== 3);
    const applied = c.raft(1).status().applied;
    c.storages.get(1)!.compact(applied, data("state"), c.raft(1).confState(applied));
    // Heartbeats come and go while the snapshot to node 3 is on its way (held back here).
    const snapshots: Message[] = [];
    for (let i = 0; i < 5; i++) {
      c.tick(1);
      c.settle((m) => {
        if (m.type === "snapshot") snapshots.push(m);
        return m.type !== "snapshot";
      });
    }
    expect(snapshots.length).toBe(1);
    expect(c.raft(1).status().progress.get(3)?.state).toBe("snapshot");
    // The stream failed: the leader probes again and sends a new snapshot, once.
    c.raft(1).reportSnapshot(3, "failed");
    expect(c.raft(1).status().progress.get(3)?.state).toBe("probe");
    c.tick(1);
    c.settle((m) => {
      if (m.type === "snapshot") snapshots.push(m);
      return true;
    });
    expect(snapshots.length).toBe(2);
    expect(c.raft(3).status().commit).toBe(c.raft(1).status().commit);
    expect(c.raft(1).status().progress.get(3)?.state).toBe("replicate");
  });

  test("replicating, a leader keeps at most inflightMessagesMax appends and about inflightBytesMax bytes unacknowledged", () => {
    for (const limits of [
      { inflightMessagesMax: 3, inflightBytesMax: 1 << 20, expectedSends: 3 },
      { inflightMessagesMax: 100, inflightBytesMax: 250, expectedSends: 3 },
    ]) {
      const c = new ManualCluster(3, { entriesPerMessageMax: 1, ...limits });
      c.elect(1);
      c.raft(1).propose(data("first"));
      c.settle();
      expect(c.raft(1).status().progress.get(2)?.state).toBe("replicate");
      // Node 2 stops answering: 20 entries of 100 bytes wait.
      for (let i = 0; i < 20; i++) c.raft(1).propose(data("x".repeat(100)));
      let sentTo2 = 0;
      c.settle((m) => {
        if (m.type === "append" && m.to === 2 && m.entries.length > 0) sentTo2++;
        return m.to !== 2;
      });
      expect({ limits, sentTo2 }).toEqual({ limits, sentTo2: limits.expectedSends });
      // Once it answers again, the rest goes out and it catches up.
      c.tick(1);
      c.settle();
      expect(c.raft(2).status().lastIndex).toBe(c.raft(1).status().lastIndex);
    }
  });

  test("the proposals made before a Ready go to each follower as one append; the commit their answers move is told once", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    for (let i = 0; i < 10; i++) c.raft(1).propose(data(`p${i}`));
    const first = c.raft(1).ready();
    const appends = first.messages.filter((m) => m.type === "append");
    expect(appends.map((m) => ({ to: m.to, entries: m.type === "append" ? m.entries.length : 0 }))).toEqual([
      { to: 2, entries: 10 },
      { to: 3, entries: 10 },
    ]);
    c.storages.get(1)!.append(first.entries);
    c.raft(1).advance(first);
    // Both followers acknowledge all ten: the commit moves, and each follower is told it in one message.
    for (const to of [2, 3]) {
      const last = c.raft(1).status().lastIndex;
      c.raft(1).step({
        type: "appendResp",
        from: to,
        to: 1,
        term: c.raft(1).status().term,
        index: last,
        reject: false,
      });
    }
    const second = c.raft(1).ready();
    const told = second.messages.filter((m) => m.type === "append");
    expect(told.map((m) => ({ to: m.to, commit: m.type === "append" ? m.commit : 0 }))).toEqual([
      { to: 2, commit: c.raft(1).status().commit },
      { to: 3, commit: c.raft(1).status().commit },
    ]);
  });
});

describe("leadership transfer", () => {
  test("the transfer gets a whole election timeout from its start, then is given up", () => {
    const c = new ManualCluster(3);
    c.elect(1);
    // Most of an election timeout passes, heartbeats answered.
    for (let i = 0; i < ELECTION - 2; i++) {
      c.tick(1);
      c.settle();
    }
    // Node 3 does not answer from here on; the transfer to it waits.
    c.raft(1).transferLeadership(3);
    expect(c.raft(1).propose(data("refused while transferring"))).toBe(false);
    for (let i = 0; i < ELECTION - 1; i++) {
      c.tick(1);
      c.settle(between([1, 2]));
    }
    // Still transferring: the timer started again at the transfer.
    expect(c.raft(1).propose(data("still transferring"))).toBe(false);
    c.tick(1);
    c.settle(between([1, 2]));
    expect(c.raft(1).role).toBe("leader");
    expect(c.raft(1).propose(data("given up"))).toBe(true);
  });

  test("a learner, or a node removed since, does not campaign on a timeoutNow", () => {
    const c = new ManualCluster(4, { firstVoters: 3 });
    c.elect(1, [1, 2, 3]);
    c.tick(1);
    c.settle();
    expect(c.raft(1).proposeConfChange({ type: "addLearner", node: 4 })).toBe(true);
    c.settle();
    const term = c.raft(4).term;
    c.raft(4).step({ type: "timeoutNow", from: 1, to: 4, term });
    expect(c.raft(4).role).toBe("follower");
    expect(c.raft(4).term).toBe(term);
    // The leader removes itself; once that commits, a stale timeoutNow of its term reaches it.
    expect(c.raft(1).proposeConfChange({ type: "remove", node: 1 })).toBe(true);
    c.settle();
    expect(c.raft(1).confState().voters).toEqual([2, 3]);
    expect(c.raft(1).role).toBe("follower");
    const removedTerm = c.raft(1).term;
    c.raft(1).step({ type: "timeoutNow", from: 2, to: 1, term: removedTerm });
    expect(c.raft(1).role).toBe("follower");
    expect(c.raft(1).term).toBe(removedTerm);
  });
});

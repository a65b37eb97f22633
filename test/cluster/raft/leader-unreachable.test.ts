import { expect, test } from "bun:test";
import { ManualCluster } from "./manual-cluster.ts";

/**
 * leaderUnreachable: a follower told by its transport that the leader's connection is gone
 * campaigns within five ticks instead of a whole election timeout (10 to 20 ticks), and a follower
 * that merely lost its own connection to a leader the others still hear changes nothing.
 */
test("the followers of a dead leader elect one of themselves within five ticks", () => {
  for (let seed = 0; seed < 20; seed++) {
    const c = new ManualCluster(3);
    c.elect(1);
    const term = c.raft(1).term;
    c.crash(1);
    for (const id of [2, 3]) c.raft(id).leaderUnreachable();
    let ticks = 0;
    // Ticks in turn, delivering what they send, until one leads (bounded: an election timeout's worth).
    while (![2, 3].some((id) => c.raft(id).role === "leader") && ticks < 10) {
      for (const id of [2, 3]) c.tick(id);
      c.settle();
      ticks++;
    }
    expect(ticks).toBeLessThanOrEqual(5);
    const leader = [2, 3].find((id) => c.raft(id).role === "leader")!;
    expect(c.raft(leader).term).toBe(term + 1);
  }
});

test("one follower that lost its connection to a live leader does not unseat it", () => {
  const c = new ManualCluster(3);
  c.elect(1);
  const term = c.raft(1).term;
  c.raft(2).leaderUnreachable();
  expect(c.raft(2).status().leader).toBe(0);
  // Node 2 campaigns (its pre-vote reaches node 3, which still hears from the leader); the leader's
  // heartbeats go on reaching node 3 only.
  for (let i = 0; i < 30; i++) {
    c.tick(2);
    c.tick(3);
    c.tick(1);
    c.settle((m) => !(m.from === 1 && m.to === 2) && !(m.from === 2 && m.to === 1));
  }
  expect(c.raft(1).role).toBe("leader");
  expect(c.raft(1).term).toBe(term);
  expect(c.raft(3).status().leader).toBe(1);
});

test("only a follower that knows a leader is moved: a leader or a node with no leader is left alone", () => {
  const c = new ManualCluster(3);
  c.elect(1);
  const before = c.raft(1).status();
  c.raft(1).leaderUnreachable();
  expect(c.raft(1).status()).toEqual(before);
});

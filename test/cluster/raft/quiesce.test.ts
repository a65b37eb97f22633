import { expect, test } from "bun:test";
import type { Message } from "../../../src/cluster/raft/types.ts";
import { between, ManualCluster } from "./manual-cluster.ts";

/**
 * Quiescence (RaftOptions.quiesce): an idle group stops ticking, so a process hosting hundreds of
 * groups spends nothing on the idle ones. A message or a call wakes a node; a follower whose quiet
 * leader died is woken by the host's failure detector (leaderUnreachable).
 */
const bytes = (text: string) => new TextEncoder().encode(text);

/** One tick of every live node, then everything delivered; returns how many messages were sent. */
function round(c: ManualCluster, allow: (m: Message) => boolean = () => true): number {
  for (const id of c.rafts.keys()) c.tick(id);
  let sent = 0;
  c.settle((m) => {
    sent++;
    return allow(m);
  });
  return sent;
}

/** A group of three that has elected node 1 and committed one write, with quiescence on or off. */
function busyGroup(quiesce: boolean): ManualCluster {
  const c = new ManualCluster(3, { quiesce });
  c.elect(1);
  expect(c.raft(1).propose(bytes("x"))).toBe(true);
  c.settle();
  return c;
}

const allQuiet = (c: ManualCluster) => [...c.rafts.values()].every((raft) => raft.quiesced);

test("an idle group quiesces within an election timeout, then sends nothing however long it is ticked", () => {
  const c = busyGroup(true);
  let rounds = 0;
  while (!allQuiet(c) && rounds < 20) {
    round(c);
    rounds++;
  }
  expect(allQuiet(c)).toBe(true);
  expect(rounds).toBeLessThanOrEqual(10);
  let sent = 0;
  for (let i = 0; i < 200; i++) sent += round(c);
  expect(sent).toBe(0);
  expect(c.raft(1).role).toBe("leader");

  // Without quiescence the same group sends a heartbeat and its answer per follower per tick.
  const busy = busyGroup(false);
  let heartbeats = 0;
  for (let i = 0; i < 200; i++) heartbeats += round(busy);
  expect(heartbeats).toBeGreaterThanOrEqual(200 * 4);
});

function quietGroup(): ManualCluster {
  const c = busyGroup(true);
  for (let i = 0; i < 20 && !allQuiet(c); i++) round(c);
  expect(allQuiet(c)).toBe(true);
  return c;
}

test("a proposal wakes the group and commits everywhere; the group quiesces again after", () => {
  const c = quietGroup();
  expect(c.raft(1).propose(bytes("y"))).toBe(true);
  c.settle();
  const last = c.raft(1).lastIndex;
  for (const id of [1, 2, 3]) expect(c.raft(id).status().commit).toBe(last);
  expect(c.raft(2).quiesced).toBe(false);
  for (let i = 0; i < 20 && !allQuiet(c); i++) round(c);
  expect(allQuiet(c)).toBe(true);
});

test("a follower's linearizable read wakes it and the leader, and is answered", () => {
  const c = quietGroup();
  const request = c.raft(3).readIndex();
  expect(request).toBeDefined();
  for (let i = 0; i < 5 && !c.reads.some((read) => read.request === request); i++) round(c);
  expect(c.reads.find((read) => read.request === request)).toMatchObject({ node: 3, index: c.raft(1).lastIndex });
});

test("a group does not quiesce while a follower lags behind the leader's log", () => {
  const c = busyGroup(true);
  const cutOff = (m: Message) => m.to !== 3 && m.from !== 3;
  expect(c.raft(1).propose(bytes("y"))).toBe(true);
  c.settle(cutOff);
  for (let i = 0; i < 30; i++) {
    // Node 3 is cut off: it is not ticked either (it would campaign), so only the lag matters here.
    for (const id of [1, 2]) c.tick(id);
    c.settle(cutOff);
    expect(c.raft(1).quiesced).toBe(false);
  }
});

test("the followers of a dead quiet leader stay quiet until told; told, they elect one of themselves", () => {
  const c = quietGroup();
  const term = c.raft(1).term;
  c.crash(1);
  for (let i = 0; i < 100; i++) round(c);
  for (const id of [2, 3]) {
    expect(c.raft(id).quiesced).toBe(true);
    expect(c.raft(id).status().leader).toBe(1);
  }
  for (const id of [2, 3]) c.raft(id).leaderUnreachable();
  let ticks = 0;
  while (![2, 3].some((id) => c.raft(id).role === "leader") && ticks < 10) {
    round(c);
    ticks++;
  }
  expect(ticks).toBeLessThanOrEqual(5);
  expect(Math.max(c.raft(2).term, c.raft(3).term)).toBe(term + 1);
});

test("a follower that missed the quiesce keeps ticking, and its pre-vote wakes the group without an election", () => {
  const c = busyGroup(true);
  const term = c.raft(1).term;
  for (let i = 0; i < 20 && !(c.raft(1).quiesced && c.raft(2).quiesced); i++)
    round(c, (m) => !(m.type === "quiesce" && m.to === 3));
  expect(c.raft(1).quiesced).toBe(true);
  expect(c.raft(3).quiesced).toBe(false);
  // Node 3 times out, pre-votes; the others wake, refuse (they heard from their leader lately), and
  // the leader's heartbeats resume: same leader, same term, and in time the group is quiet again.
  for (let i = 0; i < 60 && !allQuiet(c); i++) round(c);
  expect(c.raft(1).role).toBe("leader");
  expect(c.raft(1).term).toBe(term);
  expect(allQuiet(c)).toBe(true);
});

test("a heartbeat that reaches a quiet follower after the quiesce (late, or a duplicate) leaves it quiet: two followers woken without their leader would elect one of themselves", () => {
  const c = quietGroup();
  const term = c.raft(1).term;
  // A read at the leader: one heartbeat round to both followers, answered; copies of it come again later.
  expect(c.raft(1).readIndex()).toBeDefined();
  const copies: Message[] = [];
  c.settle((m) => {
    if (m.type === "heartbeat") copies.push(m);
    return true;
  });
  expect(copies.map((m) => m.to).sort()).toEqual([2, 3]);
  for (let i = 0; i < 20 && !allQuiet(c); i++) round(c);
  expect(allQuiet(c)).toBe(true);
  for (const m of copies) c.deliver(m);
  c.settle();
  let sent = 0;
  for (let i = 0; i < 100; i++) sent += round(c);
  expect(c.raft(1).role).toBe("leader");
  expect(c.raft(1).term).toBe(term);
  expect(allQuiet(c)).toBe(true);
  expect(sent).toBe(0);
});

/**
 * A quiet group whose leader, node 1, is then cut off: its followers are told it is unreachable and
 * elect one of themselves. Returns the cluster, what lets messages through (nothing to or from node
 * 1), and a late copy of node 2's answer to the last write (news of nothing, once it arrives).
 */
function cutOffQuietLeader(): { c: ManualCluster; cut: (m: Message) => boolean; late: Message } {
  const c = new ManualCluster(3, { quiesce: true });
  c.elect(1);
  expect(c.raft(1).propose(bytes("x"))).toBe(true);
  const answers: Message[] = [];
  c.settle((m) => {
    if (m.type === "appendResp" && m.from === 2) answers.push(m);
    return true;
  });
  const late = answers.at(-1)!;
  expect(late).toMatchObject({ reject: false, index: c.raft(1).lastIndex });
  for (let i = 0; i < 20 && !allQuiet(c); i++) round(c);
  expect(allQuiet(c)).toBe(true);
  const cut = (m: Message) => m.to !== 1 && m.from !== 1;
  for (const id of [2, 3]) c.raft(id).leaderUnreachable();
  for (let i = 0; i < 20 && ![2, 3].some((id) => c.raft(id).role === "leader"); i++) round(c, cut);
  expect([2, 3].some((id) => c.raft(id).role === "leader")).toBe(true);
  return { c, cut, late };
}

test("a quiet leader cut off from its group, once woken, steps down by CheckQuorum: the answers it had before it went quiet count for nothing", () => {
  // CheckQuorum's round is an election timeout (10 ticks) of hearing from no voter. A late answer
  // counts as one heard in the round it arrives in (as for any leader: it cannot tell how old it is),
  // so that round passes and the next ends the leadership.
  const wakers: { wake: (c: ManualCluster, late: Message) => void; ticksMax: number }[] = [
    { wake: (c, late) => c.deliver(late), ticksMax: 20 },
    { wake: (c) => expect(c.raft(1).propose(bytes("lost"))).toBe(true), ticksMax: 10 },
  ];
  for (const { wake, ticksMax } of wakers) {
    const { c, cut, late } = cutOffQuietLeader();
    expect(c.raft(1).role).toBe("leader");
    wake(c, late);
    let ticks = 0;
    for (; ticks < 40 && c.raft(1).role === "leader"; ticks++) {
      c.tick(1);
      c.settle(cut);
    }
    expect(c.raft(1).role).toBe("follower");
    expect(ticks).toBeLessThanOrEqual(ticksMax);
  }
});

test("a leader whose read's heartbeat round went unanswered does not quiesce: it asks again, and the read is answered", () => {
  const c = quietGroup();
  // A write with the read: its answers tell the leader both followers are there and have everything.
  const readAt = c.raft(1).status().commit;
  expect(c.raft(1).propose(bytes("y"))).toBe(true);
  const request = c.raft(1).readIndex();
  c.settle((m) => m.type !== "heartbeatResp");
  expect(c.raft(1).status().commit).toBe(c.raft(1).lastIndex);
  expect(c.reads.some((read) => read.request === request)).toBe(false);
  for (let i = 0; i < 5 && !c.reads.some((read) => read.request === request); i++) round(c);
  expect(c.reads.find((read) => read.request === request)).toMatchObject({ node: 1, index: readAt });
});

test("a leader whose transfer's timeoutNow was lost does not quiesce with it under way: it gives it up and takes proposals again", () => {
  const c = quietGroup();
  c.raft(1).transferLeadership(2);
  c.settle((m) => m.type !== "timeoutNow");
  expect(c.raft(1).propose(bytes("refused"))).toBe(false);
  for (let i = 0; i < 20; i++) round(c);
  expect(c.raft(1).role).toBe("leader");
  expect(c.raft(1).propose(bytes("taken"))).toBe(true);
});

test("a removed node that never learned of its removal campaigns on, but its pre-votes wake nobody in the quiet group", () => {
  const c = new ManualCluster(4, { quiesce: true });
  c.elect(1);
  // Node 4 is cut off while the others remove it: it never hears of it, and goes on as a voter.
  const without4 = (m: Message) => m.to !== 4 && m.from !== 4;
  expect(c.raft(1).proposeConfChange({ type: "remove", node: 4 })).toBe(true);
  c.settle(without4);
  for (let i = 0; i < 20 && ![1, 2, 3].every((id) => c.raft(id).quiesced); i++) round(c, without4);
  expect([1, 2, 3].every((id) => c.raft(id).quiesced)).toBe(true);
  const term = c.raft(1).term;
  // Back in touch: for 200 ticks, node 4's pre-votes are all that is sent, and the group stays quiet.
  const others: Message[] = [];
  let preVotes = 0;
  for (let i = 0; i < 200; i++) {
    round(c, (m) => {
      if (m.from === 4 && m.type === "preVote") preVotes++;
      else others.push(m);
      return true;
    });
    expect([1, 2, 3].every((id) => c.raft(id).quiesced)).toBe(true);
  }
  expect(preVotes).toBeGreaterThan(0);
  expect(others).toEqual([]);
  expect(c.raft(1).role).toBe("leader");
  expect(c.raft(1).term).toBe(term);
});

test("a removed node's transfer vote (a timeoutNow that reached it late) wakes the quiet group it unsettles, which elects a leader again", () => {
  const c = new ManualCluster(4, { quiesce: true });
  c.elect(1);
  const without4 = (m: Message) => m.to !== 4 && m.from !== 4;
  // A transfer to node 4 whose timeoutNow is held back; it is given up, and node 4, cut off, removed.
  c.raft(1).transferLeadership(4);
  const late = c.settleHolding((m) => m.type === "timeoutNow");
  expect(late.length).toBe(1);
  for (let i = 0; i < 12; i++) round(c, without4);
  expect(c.raft(1).proposeConfChange({ type: "remove", node: 4 })).toBe(true);
  c.settle(without4);
  for (let i = 0; i < 20 && ![1, 2, 3].every((id) => c.raft(id).quiesced); i++) round(c, without4);
  expect([1, 2, 3].every((id) => c.raft(id).quiesced)).toBe(true);
  const term = c.raft(1).term;
  // Node 4 campaigns at once, as a transfer's target: its vote request passes the others' lease and
  // takes away their leader (a higher term); quiet and leaderless, they would wait for nothing.
  c.deliver(late[0]!);
  c.settle();
  expect(c.raft(1).role).toBe("follower");
  let rounds = 0;
  for (; rounds < 100 && ![1, 2, 3].some((id) => c.raft(id).role === "leader"); rounds++) round(c);
  expect([1, 2, 3].some((id) => c.raft(id).role === "leader")).toBe(true);
  expect(Math.max(...[1, 2, 3].map((id) => c.raft(id).term))).toBeGreaterThan(term);
});

test("a member down keeps the group awake until the host says so; then the group goes quiet, and wakes to catch the member up when it is back", () => {
  const c = busyGroup(true);
  c.crash(3);
  // A write while it is down: committed by the two, and then the leader waits for 3's answer.
  expect(c.raft(1).propose(bytes("y"))).toBe(true);
  c.settle();
  for (let i = 0; i < 30; i++) round(c);
  expect(c.raft(1).quiesced).toBe(false);
  const down = new Set([3]);
  const tickAsHost = () => {
    c.raft(1).updateDown((id) => down.has(id));
    return round(c);
  };
  for (let i = 0; i < 20 && !allQuiet(c); i++) tickAsHost();
  expect(allQuiet(c)).toBe(true);
  let sent = 0;
  for (let i = 0; i < 50; i++) sent += tickAsHost();
  expect(sent).toBe(0);
  // Back (restarted on its log, one entry behind): the host says so, the leader wakes and catches it up.
  c.start(3);
  expect(c.raft(3).lastIndex).toBeLessThan(c.raft(1).lastIndex);
  down.clear();
  // Within a few ticks: the returning member does not wait for its election timeout to be heard.
  for (let i = 0; i < 5 && !(allQuiet(c) && c.raft(3).lastIndex === c.raft(1).lastIndex); i++) tickAsHost();
  expect(c.raft(3).lastIndex).toBe(c.raft(1).lastIndex);
  expect(c.raft(3).status().commit).toBe(c.raft(1).lastIndex);
  expect(allQuiet(c)).toBe(true);
  expect(c.raft(1).role).toBe("leader");
});

test("with a quorum down the leader never goes quiet (it steps down instead)", () => {
  const c = new ManualCluster(5, { quiesce: true });
  c.elect(1);
  expect(c.raft(1).propose(bytes("x"))).toBe(true);
  c.settle();
  for (const id of [3, 4, 5]) c.crash(id);
  for (let i = 0; i < 60 && c.raft(1).role === "leader"; i++) {
    c.raft(1).updateDown((id) => id >= 3);
    round(c);
    expect(c.raft(1).quiesced).toBe(false);
  }
  expect(c.raft(1).role).toBe("follower");
});

test("a member taken for down gets no quiesce: up after all, with an entry of an old leader where the group committed another, it must not commit it", () => {
  const c = new ManualCluster(3, { quiesce: true });
  c.elect(3);
  // Node 3 leads, takes a write no one else gets, and is cut off.
  expect(c.raft(3).propose(bytes("lost"))).toBe(true);
  c.settle(() => false);
  const at = c.raft(3).lastIndex;
  // Nodes 1 and 2 elect 1, which commits its own entries at that index and after.
  c.elect(1, [1, 2]);
  expect(c.raft(1).propose(bytes("kept"))).toBe(true);
  c.settle(between([1, 2]));
  expect(c.raft(1).termAt(at)).not.toBe(c.raft(3).termAt(at));
  // Node 3 hears the leader but its answers are lost (a one-way cut): its host says it is down.
  const oneWay = (m: Message) => m.from !== 3;
  for (let i = 0; i < 30 && !(c.raft(1).quiesced && c.raft(2).quiesced); i++) {
    c.raft(1).updateDown((id) => id === 3);
    round(c, oneWay);
  }
  expect(c.raft(1).quiesced && c.raft(2).quiesced).toBe(true);
  // Its commit index never covers its own entry at `at` (which it would then apply).
  expect(c.raft(3).status().commit).toBeLessThan(at);
});

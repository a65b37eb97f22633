import { afterEach, expect, test } from "bun:test";
import { raftIdOf } from "../../../src/cluster/replication/member-id.ts";
import type { ClusterStatusResponse } from "../../../src/gen/homekv_service.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";
import { waitFor } from "../../helpers/wait.ts";
import { MembershipGroup, type Node } from "./membership-group.ts";

const seeds = ["n1", "n2", "n3", "n4"].map((name, i) => ({ name, peerAddress: `127.0.0.1:${20011 + i}` }));
const founders = seeds.slice(0, 3);
let group: MembershipGroup | undefined;
afterEach(() => group?.stopAll());

async function founded(votersTarget: number, deadServerAfterMs?: number): Promise<MembershipGroup> {
  group = new MembershipGroup(founders, votersTarget, deadServerAfterMs);
  for (const { name } of founders) await group.start(name);
  await leaderOf(group);
  return group;
}

function leaderOf(g: MembershipGroup): Promise<Node> {
  return waitFor(
    () => {
      const nodes = [...g.nodes.values()];
      return nodes.find((n) => {
        const { voters, learners } = n.driver.groupStatus().conf;
        const members = nodes.filter((o) => voters.includes(o.id) || learners.includes(o.id));
        // A leader takes a membership change only once an entry of its term has committed (raft.ts).
        const { commit, term } = n.raft.status();
        return (
          n.raft.role === "leader" && members.every((o) => o.raft.leader === n.id) && n.raft.termAt(commit) === term
        );
      });
    },
    { what: "one leader followed by every running member of its group, an entry of its term committed" },
  );
}

const roles = (status: ClusterStatusResponse) =>
  Object.fromEntries(status.members.map((m) => [m.nodeId, `${m.role}${m.voter ? "" : " (no vote)"}`]));

test("founded from the list: every member knows every other by name and address, and says who leads", async () => {
  const g = await founded(3);
  const leader = await leaderOf(g);
  for (const node of g.nodes.values()) {
    const status = await node.control.status();
    expect(status.leader).toBe(leader.name);
    expect(status.members.map((m) => [m.nodeId, m.peerAddress, m.grpcAddress, m.voter])).toEqual(
      founders
        .map((f) => [f.name, f.peerAddress, `grpc-of-${f.name}`, true])
        .sort(([a], [b]) => raftIdOf(a as string) - raftIdOf(b as string)),
    );
    expect(status.members.filter((m) => m.isSelf).map((m) => m.nodeId)).toEqual([node.name]);
    expect(roles(status)[leader.name]).toBe("leader");
    // The founding entries are applied on every member, as index 1..3 of term 1.
    expect(status.members.every((m) => m.commitIndex >= 3)).toBe(true);
  }
});

test("a member added through a follower joins as a learner, catches up and stays one while the group has its voters", async () => {
  const g = await founded(3);
  const joiner = await g.start("n4", "existing");
  expect(joiner.driver.groupStatus().conf.voters).toEqual([]);
  const leader = await leaderOf(g);
  const follower = [...g.nodes.values()].find((n) => n !== leader && n !== joiner)!;
  const after = await follower.control.add("n4", "127.0.0.1:20014");
  // A learner at once (it may not have answered the status round yet: "unreachable" for a moment).
  expect(roles(after).n4).toMatch(/^(learner|unreachable) \(no vote\)$/);
  await waitFor(async () => roles(await follower.control.status()).n4 === "learner (no vote)", {
    what: "n4 to show as a learner",
  });
  // Every founding member's transport was told where n4 is.
  for (const name of ["n1", "n2", "n3"]) expect(g.nodes.get(name)!.transportChanges).toContain("+n4");
  await waitFor(async () => (await joiner.control.status()).members.find((m) => m.nodeId === "n4")?.lag === 0, {
    what: "n4 to catch up (lag 0 in the leader's view)",
  });
  // Caught up, but the group has its 3 voters: no promotion, however long one waits for it.
  await waitFor(() => leader.driver.groupStatus().status.progress.get(joiner.id)!.match >= 4, { what: "n4's match" });
  expect(leader.driver.groupStatus().conf.learners).toEqual([joiner.id]);
  // Asked again (a retry), the add changes nothing; another address for the member is refused.
  expect(roles(await follower.control.add("n4", "127.0.0.1:20014")).n4).toBe("learner (no vote)");
  expect(await rejectionMessage(follower.control.add("n4", "127.0.0.1:29999"))).toMatch(
    /n4 is a member already, at 127.0.0.1:20014/,
  );
});

test("with --voters 5 a caught-up learner is promoted to voter by the leader", async () => {
  const g = await founded(5);
  const joiner = await g.start("n4", "existing");
  await (await leaderOf(g)).control.add("n4", "127.0.0.1:20014");
  // The change takes effect where it is appended (n4 counts itself a voter at once); the leader
  // logs it once it is committed and applied there.
  const promoted = /promoted n4 to voter: it caught up \(4 of 5 voters\)/;
  await waitFor(() => [...g.nodes.values()].some((node) => node.lines.some((line) => promoted.test(line))), {
    what: "the leader to log n4's promotion",
  });
  expect(joiner.driver.groupStatus().conf.voters).toContain(joiner.id);
  expect(roles(await joiner.control.status()).n4).toMatch(/^(follower|leader)$/);
});

test("leadership is handed to the member named, from any member, and the call returns once it leads", async () => {
  const g = await founded(3);
  const leader = await leaderOf(g);
  const [asker, target] = [...g.nodes.values()].filter((n) => n !== leader);
  const after = await asker!.control.transferLeader(target!.name);
  expect(target!.raft.role).toBe("leader");
  expect(after.leader).toBe(target!.name);
  expect(leader.lines).toContain(`handed leadership to ${target!.name}`);
});

test("a removal that would leave no live quorum is refused; the dead voter's removal is not", async () => {
  const g = await founded(3);
  let leader = await leaderOf(g);
  const dead = [...g.nodes.values()].find((n) => n !== leader)!;
  g.stop(dead.name);
  const live = [...g.nodes.values()].find((n) => n !== leader)!;
  expect(await rejectionMessage(leader.control.remove(live.name))).toMatch(
    new RegExp(`removing ${live.name} would leave 2 voters of which 1 answer \\(${leader.name}\\); a quorum is 2`),
  );
  expect(await rejectionMessage(live.control.remove("n9"))).toMatch(/no member is named n9; the members are/);
  const status = await live.control.status();
  expect(roles(status)[dead.name]).toBe("unreachable");
  const after = await live.control.remove(dead.name);
  expect(after.members.map((m) => m.nodeId).sort()).toEqual([leader.name, live.name].sort());
  for (const node of g.nodes.values()) expect(node.transportChanges).toContain(`-${dead.name}`);
  // Two voters now: the group goes on with its quorum of two.
  leader = await leaderOf(g);
  expect(leader.driver.groupStatus().conf.voters.length).toBe(2);
});

test("autopilot: a voter gossip calls dead but that answers the leader stays; one that does not is replaced by the learner", async () => {
  const g = await founded(3, 20);
  const leader = await leaderOf(g);
  await leader.control.add("n4", seeds[3]!.peerAddress);
  await g.start("n4", "existing");
  const victim = [...g.nodes.values()].find((n) => n !== leader && n.name !== "n4")!;
  // Gossip alone is not enough: the victim still answers, so it stays a voter.
  g.gossip.set(victim.name, "dead");
  await waitFor(() => leader.lines.some((line) => line.includes("but it answers this leader")), {
    what: `the leader to keep ${victim.name}, which answers it`,
    detail: () => leader.lines.join("\n"),
  });
  expect(leader.driver.groupStatus().conf.voters).toContain(victim.id);
  // Stopped too: removed, and n4 promoted in its place.
  g.stop(victim.name);
  await waitFor(
    () => {
      const { voters } = leader.driver.groupStatus().conf;
      return !voters.includes(victim.id) && voters.includes(raftIdOf("n4"));
    },
    { what: `${victim.name} removed and n4 promoted`, detail: () => leader.lines.join("\n") },
  );
  expect(leader.lines.some((line) => line.startsWith(`autopilot removed ${victim.name}`))).toBe(true);
});

test("a restarted member rebuilds the directory from its log, members added since included", async () => {
  const g = await founded(3);
  await g.start("n4", "existing");
  await (await leaderOf(g)).control.add("n4", "127.0.0.1:20014");
  const follower = [...g.nodes.values()].find((n) => n.raft.role !== "leader" && n.name !== "n4")!;
  await waitFor(() => follower.directory.nameOf(raftIdOf("n4")) === "n4", { what: "the follower to apply n4's add" });
  g.stop(follower.name);
  const back = await g.start(follower.name);
  await waitFor(() => back.directory.members().length === 4, { what: "the restarted member to replay 4 members" });
  expect(
    back.directory
      .members()
      .map(([, m]) => m.name)
      .sort(),
  ).toEqual(["n1", "n2", "n3", "n4"]);
  expect(back.transportChanges).toContain("+n4");
});

import { afterEach, expect, test } from "bun:test";
import { type NamedServer, role, status, statusWhere } from "../helpers/cluster-status.ts";
import { freePorts } from "../helpers/free-ports.ts";
import { startServerProcess } from "../helpers/processes.ts";

/**
 * Zero-config clusters (`--bootstrap-expect`) and autopilot, with real `homekv serve` processes on
 * loopback ports: three servers started at once, in no particular order, find each other through
 * gossip and found one group; a fourth joins it as a learner on its own, and is promoted or not by
 * --voters; a SIGKILLed voter is replaced by the learner once gossip has seen it dead for
 * --dead-server-after.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

const NAMES = ["n1", "n2", "n3", "n4"];

function zeroConfigCluster(voters: number) {
  const gossipPorts = freePorts(NAMES.length);
  const peerPorts = freePorts(NAMES.length);
  const join = gossipPorts.slice(0, 3).map((port) => `127.0.0.1:${port}`);
  return async (name: string): Promise<NamedServer> => {
    const i = NAMES.indexOf(name);
    const server = await startServerProcess(
      [
        ...["--node-id", name, "--peer-port", String(peerPorts[i]), "--gossip-port", String(gossipPorts[i])],
        ...["--join", join.join(","), "--bootstrap-expect", "3", "--voters", String(voters)],
        ...["--gossip-interval", "100ms", "--raft-tick", "50ms", "--dead-server-after", "2s"],
      ],
      { env: { HOMEKV_CLUSTER_TOKEN: "test-token" }, startTimeoutMs: 30_000 },
    );
    cleanups.push(() => server.stop("SIGKILL"));
    return { name, server };
  };
}

/** Starts n1..n3 together, the last first; waits until each says it is one of the same three voters. */
async function foundThree(start: (name: string) => Promise<NamedServer>): Promise<NamedServer[]> {
  const founders = await Promise.all(["n3", "n1", "n2"].map(start));
  for (const member of founders) {
    const s = await statusWhere(member, `${member.name} to see a leader and three voters`, (s) => s.leader !== "");
    expect(s.members.map((m) => [m.node_id, m.voter]).sort()).toEqual([
      ["n1", true],
      ["n2", true],
      ["n3", true],
    ]);
    expect(member.server.output()).toContain("founded the group: n1, n2, n3");
  }
  return founders.sort((a, b) => (a.name < b.name ? -1 : 1));
}

test("three servers with --bootstrap-expect 3 found one group; a fourth joins as a learner (--voters 3); autopilot replaces a SIGKILLed voter with it", async () => {
  const start = zeroConfigCluster(3);
  const founders = await foundThree(start);
  const n4 = await start("n4");
  expect(n4.server.output()).toContain("joining the cluster as a learner: a group is formed already");
  await statusWhere(n4, "n4 to be a caught-up learner", (s) => {
    const self = s.members.find((m) => m.node_id === "n4");
    return self?.role === "learner" && self.lag === 0;
  });
  expect(role(await status(founders[0]!), "n4")).toBe("learner");

  // Kill a voter that does not lead (the leader keeps running autopilot): once gossip has seen it
  // dead for 2 s, the leader removes it and promotes n4 in its place.
  const { leader } = await status(n4);
  const victim = founders.find((m) => m.name !== leader)!;
  victim.server.proc.kill("SIGKILL");
  await victim.server.proc.exited;
  const after = await statusWhere(
    n4,
    `${victim.name} removed and n4 promoted`,
    (s) =>
      s.leader !== "" &&
      role(s, victim.name) === undefined &&
      s.members.find((m) => m.node_id === "n4")?.voter === true,
    30_000,
  ).catch((error) => {
    // What autopilot said (or did not) is in the servers' logs.
    for (const m of [...founders, n4]) console.error(`--- ${m.name}:\n${m.server.output()}`);
    throw error;
  });
  expect(
    after.members
      .filter((m) => m.voter)
      .map((m) => m.node_id)
      .sort(),
  ).toEqual([...founders.filter((m) => m !== victim).map((m) => m.name), "n4"].sort());
  const leaderOutput = [...founders, n4].find((m) => m.name === after.leader)!.server.output();
  expect(leaderOutput).toContain(`autopilot removed ${victim.name}`);
  expect(leaderOutput).toContain("promoted n4 to voter");
}, 120_000);

test("with --voters 5, a server that joins a zero-config group is promoted to voter", async () => {
  const start = zeroConfigCluster(5);
  await foundThree(start);
  const n4 = await start("n4");
  await statusWhere(n4, "n4 to be promoted to voter", (s) => {
    const self = s.members.find((m) => m.node_id === "n4");
    return self?.voter === true && self.role !== "learner";
  });
}, 90_000);

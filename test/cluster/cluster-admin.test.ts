import { afterEach, expect, test } from "bun:test";
import { homekvThrough as homekv, type NamedServer, role, status, statusWhere } from "../helpers/cluster-status.ts";
import { freePorts } from "../helpers/free-ports.ts";
import { scratchDir, startServerProcess } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * `homekv cluster status / add / remove / transfer-leader` against real `homekv serve` processes on
 * loopback ports, through the CLI as an operator would: a fourth member joins a running cluster of
 * three (`--initial-cluster-state existing`) and is promoted or not by --voters, leadership moves on
 * request, a dead member shows as unreachable, a removal that would lose the quorum is refused.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Member extends NamedServer {
  peer: string;
  http: string;
}

async function startCluster(voters: number) {
  const names = ["n1", "n2", "n3", "n4"];
  const ports = freePorts(4);
  const peers = names.map((name, i) => `${name}=127.0.0.1:${ports[i]}`);
  const start = async (name: string, state: "new" | "existing"): Promise<Member> => {
    const i = names.indexOf(name);
    const dir = scratchDir(`homekv-${name}-`);
    cleanups.push(dir.cleanup);
    const server = await startServerProcess(
      [
        ...["--node-id", name, "--data-dir", dir.path, "--peer-port", String(ports[i]), "--http-port", "0"],
        // The founders list the founders; the joiner lists everyone (it learns the members from the log).
        ...["--initial-cluster", (state === "new" ? peers.slice(0, 3) : peers).join(",")],
        ...["--initial-cluster-state", state, "--voters", String(voters), "--raft-tick", "50ms"],
      ],
      { env: { HOMEKV_CLUSTER_TOKEN: "test-token" } },
    );
    cleanups.push(() => server.stop("SIGKILL"));
    const http = await waitFor(() => /HTTP endpoint on (http:\/\/\S+) /.exec(server.output())?.[1], {
      what: `${name} to say where its HTTP endpoint is`,
    });
    return { name, peer: `127.0.0.1:${ports[i]}`, server, http };
  };
  const founders: Member[] = [];
  for (const name of names.slice(0, 3)) founders.push(await start(name, "new"));
  return { founders, start };
}

const readyz = async (member: Member) => (await fetch(`${member.http}/readyz`)).status;

test("cluster operations: status through every member, a joiner added as a learner that stays one with --voters 3, leadership handed over, a dead member unreachable, a removal that would lose the quorum refused", async () => {
  const { founders, start } = await startCluster(3);
  // Every member answers with the same group: three voters, one leader, every gRPC address known.
  let leader = "";
  for (const member of founders) {
    const s = await statusWhere(
      member,
      `${member.name} to know a leader and every member's gRPC address`,
      (s) => s.leader !== "" && s.members.every((m) => m.grpc_address !== "" && m.role !== "unreachable"),
    );
    leader ||= s.leader;
    expect(s.members.map((m) => [m.node_id, m.voter, m.peer_address]).sort()).toEqual(
      founders.map((f) => [f.name, true, f.peer]).sort(),
    );
    expect(s.members.find((m) => m.is_self)?.node_id).toBe(member.name);
    expect(s.members.find((m) => m.node_id === member.name)?.grpc_address).toBe(member.server.address);
  }
  await waitFor(async () => (await Promise.all(founders.map(readyz))).every((code) => code === 200), {
    what: "/readyz 200 on every founder",
  });

  // A fourth member, started to join: not ready (no leader) until it is added.
  const joiner = await start("n4", "existing");
  expect(joiner.server.output()).toContain("waits to be added to the cluster");
  expect(await readyz(joiner)).toBe(503);
  const follower = founders.find((m) => m.name !== leader)!;
  const added = await homekv(follower, "cluster", "add", `n4=${joiner.peer}`);
  expect(added.stderr).toBe("");
  expect(added.stdout).toContain("added n4");
  const caughtUp = await statusWhere(joiner, "n4 to catch up as a learner", (s) => {
    const n4 = s.members.find((m) => m.node_id === "n4");
    return n4?.role === "learner" && n4.lag === 0 && n4.applied_index >= 4;
  });
  expect(caughtUp.members.find((m) => m.node_id === "n4")!.voter).toBe(false);
  await waitFor(async () => (await readyz(joiner)) === 200, { what: "/readyz 200 on n4 once it caught up" });
  // Three voters already: n4 is not promoted.
  expect(role(await status(follower), "n4")).toBe("learner");

  // Leadership goes to the member named, asked through another one.
  const target = founders.find((m) => m.name !== leader && m !== follower)!;
  const moved = await homekv(follower, "cluster", "transfer-leader", target.name);
  expect(moved.stderr).toBe("");
  expect(moved.stdout).toContain(`${target.name} leads`);
  await statusWhere(target, `${target.name} to lead`, (s) => s.leader === target.name);

  // A voter killed: every other member says it is unreachable.
  const dead = founders.find((m) => m !== target)!;
  dead.server.proc.kill("SIGKILL");
  await dead.server.proc.exited;
  const live = founders.filter((m) => m !== dead);
  for (const member of [...live, joiner])
    await statusWhere(
      member,
      `${member.name} to see ${dead.name} unreachable`,
      (s) => role(s, dead.name) === "unreachable",
    );

  // Removing a live voter would leave two voters of which one answers: refused, and said why.
  const other = live.find((m) => m !== target)!;
  const refused = await homekv(joiner, "cluster", "remove", other.name);
  expect(refused.exitCode).toBe(1);
  expect(refused.stderr).toContain(
    `removing ${other.name} would leave 2 voters of which 1 answer (${target.name}); a quorum is 2`,
  );
  // Removing the dead one is fine; every member's status then lists three.
  const removed = await homekv(other, "cluster", "remove", dead.name);
  expect(removed.stderr).toBe("");
  for (const member of [...live, joiner])
    await statusWhere(member, `${member.name} to list 3 members`, (s) => s.members.length === 3 && !role(s, dead.name));
}, 120_000);

test("with --voters 5 a member that joins is promoted to voter once it caught up", async () => {
  const { founders, start } = await startCluster(5);
  await statusWhere(founders[0]!, "a leader", (s) => s.leader !== "");
  const joiner = await start("n4", "existing");
  const added = await homekv(founders[0]!, "cluster", "add", `n4=${joiner.peer}`);
  expect(added.stderr).toBe("");
  await statusWhere(joiner, "n4 to be promoted to voter", (s) => {
    const n4 = s.members.find((m) => m.node_id === "n4");
    return n4?.voter === true && n4.role === "follower";
  });
  const leader = (await status(joiner)).leader;
  const leaderProcess = founders.find((m) => m.name === leader)!;
  expect(leaderProcess.server.output()).toContain("promoted n4 to voter: it caught up (4 of 5 voters)");
}, 60_000);

import { afterEach, expect, test } from "bun:test";
import { readdirSync } from "node:fs";
import { HomeKvClient } from "../../src/client/client.ts";
import { text } from "../helpers/bytes.ts";
import { runHomekv, type ServerProcess, scratchDir, startServerProcess, staticCluster } from "../helpers/processes.ts";
import { waitFor } from "../helpers/wait.ts";

/**
 * `homekv serve` as a replicated cluster of three real processes on loopback ports (static
 * bootstrap with --initial-cluster), driven through the CLI as a user would: writes through the
 * leader, reads through every member, the leader killed with SIGKILL, a restart that catches up.
 */
const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

interface Member {
  name: string;
  dir: string;
  server: ServerProcess;
}

async function startCluster(extraArgs: string[] = []) {
  const names = ["n1", "n2", "n3"];
  const cluster = staticCluster(names);
  const start = async (name: string, dir: string): Promise<Member> => {
    const server = await startServerProcess([...cluster.memberArgs(name), "--data-dir", dir, ...extraArgs], {
      env: { HOMEKV_CLUSTER_TOKEN: "test-token" },
    });
    cleanups.push(() => server.stop("SIGKILL"));
    return { name, dir, server };
  };
  const members: Member[] = [];
  for (const name of names) {
    const dir = scratchDir(`homekv-${name}-`);
    cleanups.push(dir.cleanup);
    members.push(await start(name, dir.path));
  }
  return { members, start };
}

const homekv = (member: Member, ...args: string[]) => runHomekv([...args, "-p", String(member.server.port)]);

/** Sets `pair` through the first member that takes it (any member does, once a leader is known); returns it. */
async function setThroughAny(members: Member[], pair: string, ...flags: string[]): Promise<Member> {
  return waitFor(
    async () => {
      for (const member of members) if ((await homekv(member, "set", pair, ...flags)).exitCode === 0) return member;
      return undefined;
    },
    { what: `a member to take "set ${pair}"`, timeoutMs: 20_000, intervalMs: 50 },
  );
}

/** The member whose metrics say it leads, once exactly one does. */
async function leaderOf(members: Member[]): Promise<Member> {
  return waitFor(
    async () => {
      const roles = await Promise.all(
        members.map(async (member) => JSON.parse((await homekv(member, "metrics", "--json")).stdout).raft_role),
      );
      const leaders = members.filter((_, i) => roles[i] === "leader");
      return leaders.length === 1 ? leaders[0] : undefined;
    },
    { what: "one member to lead", timeoutMs: 20_000 },
  );
}

test("three serve processes replicate: a follower forwards writes to the leader, every member reads the latest, a killed leader is replaced and a restarted member catches up", async () => {
  const { members, start } = await startCluster();
  await setThroughAny(members, "k=1");
  for (let i = 2; i <= 10; i++) await setThroughAny(members, `k=${i}`);
  let leader = await leaderOf(members);
  // A follower takes a write too: it forwards it to the leader and answers once it applied it itself.
  const follower = members.find((m) => m !== leader)!;
  const forwarded = await homekv(follower, "set", "f=through-a-follower");
  expect([forwarded.exitCode, forwarded.stderr]).toEqual([0, ""]);
  expect((await homekv(follower, "get", "f", "--serializable")).stdout.trim()).toBe('f  "through-a-follower"');
  // Each member says what it is in its metrics: one leader, named alike by all (polled: on a loaded
  // machine leadership may move between two calls).
  await waitFor(
    async () => {
      const views = await Promise.all(
        members.map(async (member) => JSON.parse((await homekv(member, "metrics", "--json")).stdout)),
      );
      const leaders = views.filter((m) => m.raft_role === "leader");
      return (
        views.every((m) => m.replicated && m.raft_term > 0 && m.raft_commit_index >= 10) &&
        leaders.length === 1 &&
        views.every((m) => m.raft_leader === leaders[0].raft_leader) &&
        // The leader times its heartbeats' round trips; a follower has none to time.
        leaders[0].raft_peer_round_trip_us > 0 &&
        views.every((m) => m === leaders[0] || m.raft_peer_round_trip_us === 0) &&
        members.some((member) => member.name === leaders[0].raft_leader)
      );
    },
    { what: "every member's metrics to name the same one leader", timeoutMs: 20_000 },
  );
  // Reads are linearizable by default: every member answers with the latest write.
  for (const member of members) expect((await homekv(member, "get", "k")).stdout.trim()).toBe('k  "10"');
  // A key with a TTL expires everywhere (the leader's sweeper commits the delete); the followers'
  // sweepers, refused, say nothing of it.
  await setThroughAny(members, "t=x", "--ttl", "200ms");
  for (const member of members) {
    await waitFor(async () => (await homekv(member, "get", "t")).stdout.trim() === "t  (nil)", {
      what: `the TTL key to be gone on ${member.name}`,
    });
  }
  for (const member of members) expect(member.server.output()).not.toContain("TTL expiry failed");

  // The leader dies at once; the two others elect one of themselves and take writes again.
  leader = await leaderOf(members);
  leader.server.proc.kill("SIGKILL");
  await leader.server.proc.exited;
  const survivors = members.filter((m) => m !== leader);
  const killedAt = performance.now();
  await setThroughAny(survivors, "k=after");
  const failoverMs = performance.now() - killedAt;
  console.log(`replicated serve: a write was taken ${failoverMs.toFixed(0)} ms after the leader was killed`);
  for (const member of survivors) expect((await homekv(member, "get", "k")).stdout.trim()).toBe('k  "after"');
  expect(await leaderOf(survivors)).not.toBe(leader);

  // The killed member restarts on its data directory, rebuilds its store from its Raft log and catches up.
  const back = await start(leader.name, leader.dir);
  await waitFor(async () => (await homekv(back, "get", "k")).stdout.trim() === 'k  "after"', {
    what: "the restarted member to read the write made while it was down",
    timeoutMs: 20_000,
  });
  const metrics = await homekv(back, "metrics", "--json");
  // Ten writes, the forwarded one, the TTL key and its expiry, and the write after the failover.
  expect(JSON.parse(metrics.stdout).revision).toBe(14);

  // A clean shutdown of the leader hands leadership over first: the others take writes at once.
  const all = [back, ...survivors];
  await setThroughAny(all, "k=before-stop");
  const current = await leaderOf(all);
  const stoppedAt = performance.now();
  expect(await current.server.stop("SIGTERM")).toBe(0);
  const rest = all.filter((m) => m !== current);
  await setThroughAny(rest, "k=after-stop");
  console.log(
    `replicated serve: a write was taken ${(performance.now() - stoppedAt).toFixed(0)} ms after SIGTERM to the leader (stop included)`,
  );
  expect(rest).toContain(await leaderOf(rest));
  expect(current.server.output()).toContain("handed leadership over before stopping");
}, 120_000);

test("a member killed while the others write past their log compaction restarts and catches up by the leader's snapshot", async () => {
  // A checkpoint every 2 KiB of commands, 10 entries of log kept behind it.
  const { members, start } = await startCluster(["--checkpoint-wal-bytes", "2048", "--raft-log-tail-entries", "10"]);
  await setThroughAny(members, "k=0");
  const leader = await leaderOf(members);
  const victim = members.find((m) => m !== leader)!;
  victim.server.proc.kill("SIGKILL");
  await victim.server.proc.exited;
  // Any survivor takes the writes (a follower forwards them): leadership may move under load.
  const client = new HomeKvClient({ endpoints: members.filter((m) => m !== victim).map((m) => m.server.address) });
  cleanups.push(() => client.close());
  let revision = 0;
  for (let i = 1; i <= 300; i++)
    revision = (await client.set({ [`key-${i % 50}`]: `value-${i}` }, { requestId: `catch-up-${i}` })).revision;
  // The survivors checkpointed and compacted: their Raft logs start at a snapshot.
  for (const member of members.filter((m) => m !== victim)) {
    await waitFor(() => readdirSync(`${member.dir}/raft`).some((name) => name.endsWith(".raftsnap")), {
      what: `${member.name}'s Raft log to be compacted`,
    });
    expect(readdirSync(`${member.dir}/checkpoints`).some((name) => name.endsWith(".rckpt"))).toBe(true);
  }
  const back = await start(victim.name, victim.dir);
  await waitFor(async () => (await homekv(back, "get", "key-0")).stdout.trim() === 'key-0  "value-300"', {
    what: "the restarted member to read the last write",
    timeoutMs: 20_000,
    detail: () => back.server.output(),
  });
  expect(back.server.output()).toContain("installed the leader's snapshot at index");
  // The member that streamed it counts it.
  const sent = await Promise.all(
    members.filter((m) => m !== victim).map(async (m) => JSON.parse((await homekv(m, "metrics", "--json")).stdout)),
  );
  expect(sent.reduce((sum, m) => sum + m.raft_snapshots_sent, 0)).toBeGreaterThanOrEqual(1);
  expect(JSON.parse((await homekv(back, "metrics", "--json")).stdout).revision).toBe(revision);
  // Every key reads the same through the member that caught up as through the leader.
  const keys = Array.from({ length: 50 }, (_, i) => `key-${i}`);
  const theirs = new HomeKvClient({ address: back.server.address });
  cleanups.push(() => theirs.close());
  const values = async (c: HomeKvClient) =>
    (await c.get(keys, { revision })).records.map((r) => r.value && text(r.value));
  expect(await values(theirs)).toEqual(await values(client));
}, 120_000);

test("a member left without its quorum refuses a Checkpoint call that must catch up first, and writes one of what it applied when asked --serializable", async () => {
  const { members } = await startCluster();
  for (let i = 1; i <= 5; i++) await setThroughAny(members, `k${i}=${i}`);
  const leader = await leaderOf(members);
  const survivor = members.find((m) => m !== leader)!;
  await waitFor(async () => JSON.parse((await homekv(survivor, "metrics", "--json")).stdout).revision === 5, {
    what: `${survivor.name} to apply the five writes`,
  });
  for (const member of members.filter((m) => m !== survivor)) {
    member.server.proc.kill("SIGKILL");
    await member.server.proc.exited;
  }
  // By default the member must first learn from a leader what its group committed: there is none.
  const refused = await homekv(survivor, "checkpoint");
  expect(refused.exitCode).not.toBe(0);
  expect(refused.stderr.trim().split("\n")).toHaveLength(1);
  expect(refused.stderr).toContain("UNAVAILABLE");
  expect(refused.stderr).toContain("no checkpoint: this member could not catch up with its group's commit");
  expect(refused.stderr).toContain("homekv checkpoint --serializable writes what this member has applied");
  console.log(`checkpoint without a quorum: ${refused.stderr.trim()}`);
  const checkpoints = () => readdirSync(`${survivor.dir}/checkpoints`).filter((name) => name.endsWith(".rckpt"));
  expect(checkpoints()).toEqual([]);
  // Serializable: what it applied, at once, with no quorum to ask.
  const written = await homekv(survivor, "checkpoint", "--serializable", "--json");
  expect([written.exitCode, written.stderr]).toEqual([0, ""]);
  expect(JSON.parse(written.stdout)).toMatchObject({ revision: 5, keys: 5 });
  expect(checkpoints()).toHaveLength(1);
}, 120_000);

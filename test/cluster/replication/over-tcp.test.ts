import { afterEach, expect, test } from "bun:test";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import { startTcpGroup, type TcpGroup, type TcpMember } from "./tcp-group.ts";

const groups: TcpGroup[] = [];
afterEach(async () => {
  for (const group of groups.splice(0)) await group.close();
});

/** Three members of one Raft group in this process over real TCP (tcp-group.ts). */
async function startMembers(): Promise<TcpMember[]> {
  const group = await startTcpGroup();
  groups.push(group);
  return group.members;
}

const leaderOf = (members: TcpMember[]) =>
  waitFor(() => members.find((m) => m.raft.role === "leader" && members.every((o) => o.raft.leader === m.id)), {
    what: "one leader that every member follows",
    timeoutMs: 15_000,
  });

test("over TCP: writes through the leader are applied by every member at the same revisions; reads after a barrier see them", async () => {
  const members = await startMembers();
  const leader = await leaderOf(members);
  for (let i = 1; i <= 20; i++) {
    expect((await leader.db.write([{ key: `k${i % 5}`, value: bytes(`v${i}`) }])).revision).toBe(i);
  }
  for (const member of members) {
    await member.db.readBarrier();
    expect(member.db.revision).toBe(20);
    expect(member.db.read(["k0", "k1"]).records.map((r) => text(r.value!))).toEqual(["v20", "v16"]);
  }
});

test("over TCP: the leader cut off by the network is replaced; writes go on; after the heal it follows and has them", async () => {
  const members = await startMembers();
  const old = await leaderOf(members);
  await old.db.write([{ key: "before", value: bytes("1") }]);
  const others = members.filter((m) => m !== old);
  // Cut both ways at the transports: what the old leader sends is lost, and what it would receive.
  old.transport.partition(
    others.map((m) => m.name),
    "both",
  );
  for (const m of others) m.transport.partition([old.name], "both");
  const next = await waitFor(() => others.find((m) => m.raft.role === "leader"), {
    what: "a new leader among the other two",
    timeoutMs: 15_000,
  });
  const written = await next.db.write([{ key: "after", value: bytes("2") }]);
  for (const m of members) m.transport.heal();
  await waitFor(() => old.raft.leader === next.id && old.db.revision === written.revision, {
    what: "the old leader to follow the new one and apply its write",
    timeoutMs: 15_000,
  });
  expect(text(old.db.read(["after"]).records[0]!.value!)).toBe("2");
});

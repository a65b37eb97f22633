import { expect, test } from "bun:test";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { foundGroupIfNew, foundingEntries } from "../../../src/cluster/replication/bootstrap.ts";
import { type DirectoryChange, MemberDirectory } from "../../../src/cluster/replication/member-directory.ts";
import { raftIdOf } from "../../../src/cluster/replication/member-id.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";

const at = (name: string, port: number) => ({ name, peerAddress: `a:${port}` });
const [n1, n2, n3, n4] = [at("n1", 1), at("n2", 2), at("n3", 3), at("n4", 4)];

test("raft ids are a frozen hash of the name: the same in every version", () => {
  // The first 6 bytes of SHA-256("n1"), big-endian; a change here would orphan every log on disk.
  // (`printf n1 | sha256sum` begins 676b8bb84ce7.)
  expect(raftIdOf("n1")).toBe(0x676b8bb84ce7);
  expect(raftIdOf("n1")).not.toBe(raftIdOf("n2"));
});

test("the worked example: bootstrap, add, promote, remove", () => {
  const changes: DirectoryChange[] = [];
  const directory = new MemberDirectory([], (change) => changes.push(change));
  for (const entry of foundingEntries([n3, n1, n2])) directory.apply(entry.conf!);
  directory.apply({ type: "addLearner", node: raftIdOf("n4"), member: n4 });
  directory.apply({ type: "addVoter", node: raftIdOf("n4") });
  directory.apply({ type: "remove", node: raftIdOf("n2") });
  expect(
    directory
      .members()
      .map(([, m]) => m.name)
      .sort(),
  ).toEqual(["n1", "n3", "n4"]);
  expect(directory.addressOf(raftIdOf("n4"))).toBe("a:4");
  // The promotion changed nothing the transport needs to know.
  expect(changes.map((c) => `${c.kind} ${c.member.name}`)).toEqual([
    "added n1",
    "added n2",
    "added n3",
    "added n4",
    "removed n2",
  ]);
});

test("seeds name members before the log does; the log's address wins; a removal forgets the member, not the seed", () => {
  const directory = new MemberDirectory([n1, at("n2", 9)]);
  expect(directory.nameOf(raftIdOf("n2"))).toBe("n2");
  expect(directory.addressOf(raftIdOf("n2"))).toBe("a:9");
  directory.apply({ type: "addVoter", node: raftIdOf("n2"), member: n2 });
  expect(directory.addressOf(raftIdOf("n2"))).toBe("a:2");
  directory.apply({ type: "remove", node: raftIdOf("n2") });
  expect(directory.members()).toEqual([]);
  expect(directory.addressOf(raftIdOf("n2"))).toBe("a:9");
  expect(directory.names.get(raftIdOf("n1"))).toBe("n1");
});

test("a new member whose name hashes to a known member's id is refused", () => {
  const directory = new MemberDirectory([n1]);
  // Stand-in for a collision (2^-48 by chance): a member known under n1's id with another name.
  directory.apply({ type: "addVoter", node: raftIdOf("x9"), member: n1 });
  expect(() => directory.idForNewMember("x9")).toThrow(/x9 and n1 have the same Raft id/);
  expect(directory.idForNewMember("n4")).toBe(raftIdOf("n4"));
});

test("restore (a snapshot's members) replaces the directory and reports what changed", () => {
  const changes: string[] = [];
  const directory = new MemberDirectory([], (c) => changes.push(`${c.kind} ${c.member.name}`));
  for (const member of [n1, n2]) directory.apply({ type: "addVoter", node: raftIdOf(member.name), member });
  changes.length = 0;
  directory.restore([n1, n3]);
  expect(
    directory
      .members()
      .map(([, m]) => m.name)
      .sort(),
  ).toEqual(["n1", "n3"]);
  expect(changes).toEqual(["removed n2", "added n3"]);
});

test("founding writes the same entries on every member whatever the order, once, and not when joining", async () => {
  expect(foundingEntries([n2, n1])).toEqual(foundingEntries([n1, n2]));
  const log = await DurableRaftLog.open(new MemoryFileSystem(), "/raft");
  expect(await foundGroupIfNew(log, [n1, n2, n3], "existing")).toBe(false);
  expect(log.lastIndex()).toBe(0);
  expect(await foundGroupIfNew(log, [n1, n2, n3], "new")).toBe(true);
  expect(log.hardState()).toEqual({ term: 1, vote: 0, commit: 3 });
  expect(log.entries(1, 4).map((e) => e.conf?.member?.name)).toEqual(["n1", "n2", "n3"]);
  // A restart with the same flags leaves the log alone.
  expect(await foundGroupIfNew(log, [n1, n2, n3, n4], "new")).toBe(false);
  expect(log.lastIndex()).toBe(3);
});

import { afterEach, expect, test } from "bun:test";
import { HomeKvError } from "../../../src/errors.ts";
import type { Database } from "../../../src/storage/database.ts";
import type { ApplyResult } from "../../../src/storage/ops.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import { type LocalGroup, startReplicatedLocalGroup } from "./local-group.ts";

const groups: { group: LocalGroup<ApplyResult | undefined>; databases: Map<number, Database> }[] = [];
afterEach(async () => {
  for (const { group, databases } of groups.splice(0)) {
    for (const db of databases.values()) await db.close();
    group.stop();
  }
});

/** Three members, each with its own store and database over the group's log. */
async function startReplicated() {
  const replicated = await startReplicatedLocalGroup({ historyRevisions: Number.POSITIVE_INFINITY });
  groups.push(replicated);
  return replicated;
}

const valuesAt = (db: Database, keys: string[], revision: number) =>
  db.read(keys, revision).records.map((record) => (record.value === undefined ? null : text(record.value)));

test("every member's store holds the same values at the same revisions, dense across a change of leader", async () => {
  const { group, databases } = await startReplicated();
  const first = await group.leader();
  const db = databases.get(first.id)!;
  expect(
    (
      await db.write([
        { key: "a", value: bytes("1") },
        { key: "b", value: bytes("1") },
      ])
    ).revision,
  ).toBe(1);
  expect(
    (
      await db.write([
        { key: "a", value: bytes("2") },
        { key: "b", value: null },
      ])
    ).revision,
  ).toBe(2);
  const txn = await db.txn({
    compares: [{ key: "a", target: "value", op: "==", value: bytes("2") }],
    success: [{ key: "c", value: bytes("3") }, { get: "c" }],
    failure: [],
  });
  expect([txn.revision, txn.succeeded, text(txn.reads[0]!.value!)]).toEqual([3, true, "3"]);
  // The leader is cut off; another takes over (its empty entry and any membership change take no revision).
  group.isolate(first.id);
  const others = group.members.filter((m) => m !== first);
  const next = await waitFor(() => others.find((m) => m.raft.role === "leader"), { what: "a new leader" });
  expect((await databases.get(next.id)!.write([{ key: "d", value: bytes("4") }])).revision).toBe(4);
  group.cut.clear();
  await waitFor(() => [...databases.values()].every((member) => member.revision === 4), {
    what: "every member at revision 4",
    detail: () => [...databases].map(([id, member]) => `${id}: ${member.revision}`).join(", "),
  });
  const keys = ["a", "b", "c", "d"];
  for (let revision = 1; revision <= 4; revision++) {
    const expected = valuesAt(databases.get(next.id)!, keys, revision);
    for (const member of databases.values()) expect(valuesAt(member, keys, revision)).toEqual(expected);
  }
  expect(valuesAt(databases.get(first.id)!, keys, 4)).toEqual(["2", null, "3", "4"]);
});

test("a write through a follower's database is refused, naming the leader, and applies nothing", async () => {
  const { group, databases } = await startReplicated();
  const leader = await group.leader();
  const follower = group.members.find((m) => m !== leader)!;
  const error = await databases
    .get(follower.id)!
    .write([{ key: "k", value: bytes("v") }])
    .catch((e: unknown) => e);
  expect(error).toBeInstanceOf(HomeKvError);
  expect((error as HomeKvError).code).toBe("E_NOT_LEADER");
  expect(databases.get(leader.id)!.revision).toBe(0);
});

test("a follower's reads after its read barrier see every write acknowledged before it; serializable ones may not", async () => {
  const { group, databases } = await startReplicated();
  const leader = await group.leader();
  const follower = group.members.find((m) => m !== leader)!;
  // The follower hears nothing from the leader for now: it falls behind.
  group.cut.add(`${leader.id}>${follower.id}`);
  await databases.get(leader.id)!.write([{ key: "k", value: bytes("v") }]);
  const followerDb = databases.get(follower.id)!;
  expect(followerDb.revision).toBe(0); // a serializable read here would be stale
  const barrier = followerDb.readBarrier();
  group.cut.clear();
  await barrier;
  expect(valuesAt(followerDb, ["k"], followerDb.revision)).toEqual(["v"]);
  // A read-only transaction takes the barrier too.
  const txn = await followerDb.txn({ compares: [], success: [{ get: "k" }], failure: [] });
  expect(text(txn.reads[0]!.value!)).toBe("v");
});

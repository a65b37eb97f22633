import { afterEach, describe, expect, test } from "bun:test";
import type { Entry, Message } from "../../../src/cluster/raft/types.ts";
import { HomeKvError } from "../../../src/errors.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";
import { type GroupMember, type LocalGroup, startLocalGroup } from "./local-group.ts";

/** What a member applied, in order: the state machine these tests replicate. */
class Recorder {
  readonly values: string[] = [];
  apply(entry: Entry): number {
    if (entry.data !== null) this.values.push(text(entry.data)!);
    return this.values.length;
  }
  restore(): void {
    throw new Error("no snapshot is taken in these tests");
  }
}

const groups: LocalGroup<number>[] = [];
afterEach(() => {
  for (const group of groups.splice(0)) group.stop();
});

/** Three members, and what each applied. */
async function startGroup() {
  const recorders = new Map<number, Recorder>();
  const group = await startLocalGroup((id) => {
    const recorder = new Recorder();
    recorders.set(id, recorder);
    return recorder;
  });
  groups.push(group);
  const values = (member: GroupMember<number>) => recorders.get(member.id)!.values;
  return { ...group, values, leader: await group.leader() };
}

const refusal = (promise: Promise<unknown>) =>
  promise.then(
    () => {
      throw new Error("expected a refusal");
    },
    (error: unknown) => {
      expect(error).toBeInstanceOf(HomeKvError);
      return error as HomeKvError;
    },
  );

describe("RaftDriver", () => {
  test("concurrent proposals at the leader resolve with what the state machine returned; every member applies them in one order", async () => {
    const { members, leader, values } = await startGroup();
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => leader.driver.propose(bytes(`v${i}`))));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await waitFor(() => members.every((m) => values(m).length === 50), { what: "every member to apply 50" });
    for (const member of members) expect(values(member)).toEqual(values(leader));
  });

  test("a leader's appends go out while it writes them; the write is answered only once the leader synced too", async () => {
    const { leader, members } = await startGroup();
    const release = leader.fs.holdSyncs();
    let answered = false;
    const proposed = leader.driver.propose(bytes("held")).then((index) => {
      answered = true;
      return index;
    });
    await waitFor(() => leader.fs.syncsWaiting > 0, { what: "the leader's sync to be under way" });
    const carries = (m: Message) => m.type === "append" && m.entries.some((e) => e.data && text(e.data) === "held");
    // Sent in parallel with the leader's own write (§10.2.1)...
    expect(leader.sent.some(carries)).toBe(true);
    // ...and acknowledged by the followers, who synced it: still not applied while the leader's sync waits.
    const followers = members.filter((m) => m !== leader);
    await waitFor(
      () => followers.every((f) => f.sent.some((m) => m.type === "appendResp" && !m.reject && m.index >= 1)),
      {
        what: "both followers to acknowledge the entry",
      },
    );
    expect(answered).toBe(false);
    release();
    expect(await proposed).toBe(1);
  });

  test("a follower acknowledges an append only once it synced it", async () => {
    const { leader, members } = await startGroup();
    const follower = members.find((m) => m !== leader)!;
    const release = follower.fs.holdSyncs();
    const proposed = leader.driver.propose(bytes("held"));
    const index = leader.raft.status().lastIndex;
    await waitFor(() => follower.fs.syncsWaiting > 0, { what: "the follower's sync to be under way" });
    const acks = () => follower.sent.filter((m) => m.type === "appendResp" && !m.reject && m.index >= index);
    expect(acks()).toEqual([]);
    release();
    expect(await proposed).toBe(1);
    await waitFor(() => acks().length > 0, { what: "the follower's acknowledgement after its sync" });
  });

  test("a follower's read barrier returns once the follower has applied what the leader had committed", async () => {
    const { members, leader, values } = await startGroup();
    const follower = members.find((m) => m !== leader)!;
    await leader.driver.propose(bytes("x"));
    const index = await follower.driver.readBarrier(5_000);
    expect(index).toBeGreaterThanOrEqual(2);
    expect(values(follower)).toContain("x");
    // Many reads at once share the requests they wait for, and all see the write.
    const indexes = await Promise.all(Array.from({ length: 20 }, () => follower.driver.readBarrier(5_000)));
    expect(Math.min(...indexes)).toBeGreaterThanOrEqual(index);
    expect(follower.sent.filter((m) => m.type === "readIndex").length).toBeLessThan(1 + 20);
  });

  test("a follower refuses a write, naming the leader", async () => {
    const { members, leader } = await startGroup();
    const follower = members.find((m) => m !== leader)!;
    const error = await refusal(follower.driver.propose(bytes("no")));
    expect(error.code).toBe("E_NOT_LEADER");
    expect(error.message).toContain(`node ${leader.id} is`);
  });

  test("a write taken by a leader that is then cut off is rejected as not applied once another leader's entry takes its index", async () => {
    const group = await startGroup();
    const old = group.leader;
    group.isolate(old.id);
    const orphan = refusal(old.driver.propose(bytes("orphan")));
    const others = group.members.filter((m) => m !== old);
    const next = await waitFor(() => others.find((m) => m.raft.role === "leader"), { what: "a new leader" });
    expect(await next.driver.propose(bytes("after"))).toBe(1);
    group.cut.clear();
    expect((await orphan).code).toBe("E_PROPOSAL_DROPPED");
    await waitFor(() => group.values(old).includes("after"), { what: "the old leader to apply the new one's write" });
    expect(group.values(old)).not.toContain("orphan");
  });

  test("a write whose index the same member gives a later write (its log cut short meanwhile) is still answered", async () => {
    const group = await startGroup();
    const old = group.leader;
    group.isolate(old.id);
    // Three entries of the old leader's term that no one else gets: at c+1, c+2, c+3.
    const outcome = (promise: Promise<unknown>) =>
      promise.then(
        () => "applied",
        (error: unknown) => (error instanceof HomeKvError ? error.code : String(error)),
      );
    const first = outcome(old.driver.propose(bytes("a")));
    const second = outcome(old.driver.propose(bytes("b")));
    const third = outcome(old.driver.propose(bytes("c")));
    const thirdIndex = old.raft.lastIndex;
    const others = group.members.filter((m) => m !== old);
    // The next leader appends only its empty entry (at c+1): the old leader's log is cut back to it.
    const next = await waitFor(() => others.find((m) => m.raft.role === "leader"), { what: "a new leader" });
    group.cut.clear();
    await waitFor(() => old.raft.lastIndex < thirdIndex - 1 && old.raft.leader === next.id, {
      what: "the old leader's log to be cut back below its second entry",
      detail: () => `old: last ${old.raft.lastIndex}, leader ${old.raft.leader}; third entry was at ${thirdIndex}`,
    });
    // Leading again, its empty entry takes c+2 and its next write c+3: the index of "c".
    await waitFor(
      () => {
        if (next.raft.role === "leader") next.driver.transferLeadership(old.id);
        return old.raft.role === "leader";
      },
      {
        what: "the old leader to lead again",
        detail: () => `${old.id}: ${old.raft.role}, ${next.id}: ${next.raft.role}`,
      },
    );
    const later = old.driver.propose(bytes("d"));
    expect(old.raft.lastIndex).toBe(thirdIndex);
    expect(await later).toBeGreaterThan(0);
    expect(await Promise.all([first, second])).toEqual(["E_PROPOSAL_DROPPED", "E_PROPOSAL_DROPPED"]);
    // "c" waited at the index "d" took: it hears that another entry was applied there, not nothing forever.
    const answered = await waitFor(() => Promise.race([third, Promise.resolve("")]), {
      what: 'the write "c" to be answered',
      timeoutMs: 3_000,
    });
    expect(answered).toBe("E_PROPOSAL_DROPPED");
    expect(group.values(old)).not.toContain("c");
  }, 20_000);

  test("a failed sync stops the member: what waits and what comes later is refused with E_DISK", async () => {
    const { leader } = await startGroup();
    leader.fs.injectFault({ op: "sync", code: "EIO" });
    expect((await refusal(leader.driver.propose(bytes("lost")))).code).toBe("E_DISK");
    expect(leader.fatal.length).toBe(1);
    expect((await refusal(leader.driver.readBarrier(1_000))).code).toBe("E_DISK");
  });

  test("a leader that stops hands leadership to a caught-up voter first; a member that does not lead has nothing to hand over", async () => {
    const { members, leader, values } = await startGroup();
    await leader.driver.propose(bytes("before"));
    const follower = members.find((m) => m !== leader)!;
    expect(await follower.driver.handOff(1_000)).toBe(true);
    expect(leader.raft.role).toBe("leader");
    expect(await leader.driver.handOff(2_000)).toBe(true);
    // It stepped down; the voter it chose is elected a moment later.
    const next = await waitFor(() => members.find((m) => m.raft.role === "leader"), { what: "the new leader" });
    expect(next).not.toBe(leader);
    expect(await next!.driver.propose(bytes("after"))).toBe(2);
    await waitFor(() => values(leader).includes("after"), { what: "the old leader to follow the new one" });
  });
});

import { afterEach, describe, expect, test } from "bun:test";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { Raft } from "../../../src/cluster/raft/raft.ts";
import type { Entry, Message, NodeId } from "../../../src/cluster/raft/types.ts";
import { RaftDriver } from "../../../src/cluster/replication/raft-driver.ts";
import { HomeKvError } from "../../../src/errors.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";

const TICK_MS = 2;

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

interface Member {
  id: NodeId;
  fs: MemoryFileSystem;
  raft: Raft;
  recorder: Recorder;
  driver: RaftDriver<number>;
  sent: Message[];
  fatal: unknown[];
}

/**
 * Three drivers in one process, real timers (2 ms ticks), a log each on its own in-memory file
 * system, messages delivered on the next turn unless a pair is cut.
 */
async function startGroup(): Promise<{ members: Member[]; cut: Set<string> }> {
  const cut = new Set<string>();
  const members: Member[] = [];
  for (const id of [1, 2, 3]) {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, "/raft");
    const raft = new Raft({ id, voters: [1, 2, 3], storage: log, random: mulberry32(id) });
    const recorder = new Recorder();
    const sent: Message[] = [];
    const fatal: unknown[] = [];
    const driver = new RaftDriver<number>({
      raft,
      storage: log,
      stateMachine: recorder,
      tickMs: TICK_MS,
      onFatal: (error) => fatal.push(error),
      outbox: {
        send(messages) {
          for (const m of messages) {
            sent.push(m);
            if (cut.has(`${m.from}>${m.to}`)) continue;
            setImmediate(() => members[m.to - 1]!.driver.receive(m));
          }
        },
      },
    });
    members.push({ id, fs, raft, recorder, driver, sent, fatal });
  }
  for (const member of members) member.driver.start();
  running.push(members);
  return { members, cut };
}

const running: Member[][] = [];
afterEach(() => {
  for (const members of running.splice(0)) for (const member of members) member.driver.stop();
});

const leaderOf = (members: Member[]) =>
  waitFor(() => members.find((m) => m.raft.role === "leader" && members.every((o) => o.raft.leader === m.id)), {
    what: "one leader followed by every member",
    detail: () => members.map((m) => `${m.id}: ${m.raft.role} term ${m.raft.term} leader ${m.raft.leader}`).join("; "),
  });

const isolate = (cut: Set<string>, id: NodeId) => {
  for (const other of [1, 2, 3]) if (other !== id) cut.add(`${id}>${other}`).add(`${other}>${id}`);
};

describe("RaftDriver", () => {
  test("concurrent proposals at the leader resolve with what the state machine returned; every member applies them in one order", async () => {
    const { members } = await startGroup();
    const leader = await leaderOf(members);
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => leader.driver.propose(bytes(`v${i}`))));
    expect(results).toEqual(Array.from({ length: 50 }, (_, i) => i + 1));
    await waitFor(() => members.every((m) => m.recorder.values.length === 50), { what: "every member to apply 50" });
    for (const member of members) expect(member.recorder.values).toEqual(leader.recorder.values);
  });

  test("a Ready's messages go out only once its entries are synced", async () => {
    const { members } = await startGroup();
    const leader = await leaderOf(members);
    const release = leader.fs.holdSyncs();
    const proposed = leader.driver.propose(bytes("held"));
    await waitFor(() => leader.fs.syncsWaiting > 0, { what: "the leader's sync to be under way" });
    const carries = (m: Message) => m.type === "append" && m.entries.some((e) => e.data && text(e.data) === "held");
    expect(leader.sent.some(carries)).toBe(false);
    release();
    expect(await proposed).toBe(1);
    expect(leader.sent.some(carries)).toBe(true);
  });

  test("a follower's read barrier returns once the follower has applied what the leader had committed", async () => {
    const { members } = await startGroup();
    const leader = await leaderOf(members);
    const follower = members.find((m) => m !== leader)!;
    await leader.driver.propose(bytes("x"));
    const index = await follower.driver.readBarrier(5_000);
    expect(index).toBeGreaterThanOrEqual(2);
    expect(follower.recorder.values).toContain("x");
    // Many reads at once share the requests they wait for, and all see the write.
    const indexes = await Promise.all(Array.from({ length: 20 }, () => follower.driver.readBarrier(5_000)));
    expect(Math.min(...indexes)).toBeGreaterThanOrEqual(index);
    const readIndexRequests = follower.sent.filter((m) => m.type === "readIndex").length;
    expect(readIndexRequests).toBeLessThan(1 + 20);
  });

  test("a follower refuses a write, naming the leader", async () => {
    const { members } = await startGroup();
    const leader = await leaderOf(members);
    const follower = members.find((m) => m !== leader)!;
    const refusal = await follower.driver.propose(bytes("no")).catch((error: HomeKvError) => error);
    expect(refusal).toBeInstanceOf(HomeKvError);
    expect((refusal as HomeKvError).code).toBe("E_NOT_LEADER");
    expect((refusal as HomeKvError).message).toContain(`node ${leader.id} is`);
  });

  test("a write taken by a leader that is then cut off is rejected as not applied once another leader's entry takes its index", async () => {
    const { members, cut } = await startGroup();
    const old = await leaderOf(members);
    isolate(cut, old.id);
    const orphan = old.driver.propose(bytes("orphan")).catch((error: HomeKvError) => error);
    const others = members.filter((m) => m !== old);
    const next = await waitFor(() => others.find((m) => m.raft.role === "leader"), { what: "a new leader" });
    expect(await next.driver.propose(bytes("after"))).toBe(1);
    cut.clear();
    const refusal = await orphan;
    expect(refusal).toBeInstanceOf(HomeKvError);
    expect((refusal as HomeKvError).code).toBe("E_PROPOSAL_DROPPED");
    await waitFor(() => old.recorder.values.includes("after"), { what: "the old leader to apply the new one's write" });
    expect(old.recorder.values).not.toContain("orphan");
  });

  test("a failed sync stops the member: what waits and what comes later is refused with E_DISK", async () => {
    const { members } = await startGroup();
    const leader = await leaderOf(members);
    leader.fs.injectFault({ op: "sync", code: "EIO" });
    const refusal = await leader.driver.propose(bytes("lost")).catch((error: HomeKvError) => error);
    expect((refusal as HomeKvError).code).toBe("E_DISK");
    expect(leader.fatal.length).toBe(1);
    const later = await leader.driver.readBarrier(1_000).catch((error: HomeKvError) => error);
    expect((later as HomeKvError).code).toBe("E_DISK");
  });
});

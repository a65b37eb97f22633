import { afterEach, expect, test } from "bun:test";
import { DurableRaftLog } from "../../../src/cluster/raft/durable-log.ts";
import { Raft } from "../../../src/cluster/raft/raft.ts";
import type { Entry, Message, NodeId } from "../../../src/cluster/raft/types.ts";
import { RaftDriver } from "../../../src/cluster/replication/raft-driver.ts";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import { bytes, text } from "../../helpers/bytes.ts";
import { waitFor } from "../../helpers/wait.ts";

interface Node {
  id: NodeId;
  fs: MemoryFileSystem;
  raft: Raft;
  driver: RaftDriver<void>;
  applied: string[];
  sent: Message[];
}

const running: Node[] = [];
afterEach(() => {
  for (const node of running.splice(0)) node.driver.stop();
});

/** Member 1 is the only voter; member 2 starts outside the group and waits to be added. */
async function startPair(): Promise<[Node, Node]> {
  const nodes: Node[] = [];
  for (const id of [1, 2]) {
    const fs = new MemoryFileSystem();
    const log = await DurableRaftLog.open(fs, "/raft");
    const raft = new Raft({ id, voters: [1], storage: log, random: mulberry32(id) });
    const applied: string[] = [];
    const sent: Message[] = [];
    const driver = new RaftDriver<void>({
      raft,
      storage: log,
      tickMs: 2,
      stateMachine: {
        apply: (entry: Entry) => {
          if (entry.data !== null) applied.push(text(entry.data)!);
        },
        restore: () => {
          throw new Error("no snapshot in this test");
        },
      },
      outbox: {
        send(messages) {
          for (const m of messages) {
            sent.push(m);
            setImmediate(() => nodes[m.to - 1]!.driver.receive(m));
          }
        },
      },
    });
    nodes.push({ id, fs, raft, driver, applied, sent });
  }
  for (const node of nodes) {
    node.driver.start();
    running.push(node);
  }
  return [nodes[0]!, nodes[1]!];
}

test("a lone voter with a learner: no entry is committed on the learner before the leader's own copy is durable", async () => {
  const [leader, learner] = await startPair();
  await waitFor(() => leader.raft.role === "leader", { what: "member 1 to lead alone" });
  await leader.driver.proposeConfChange({ type: "addLearner", node: 2 });
  await leader.driver.propose(bytes("before"));
  await waitFor(() => learner.applied.includes("before"), { what: "the learner to apply 'before'" });

  const release = leader.fs.holdSyncs();
  const answered = leader.driver.propose(bytes("x"));
  await waitFor(() => leader.fs.syncsWaiting > 0, { what: "the leader's sync of 'x' to be under way" });
  const index = leader.raft.status().lastIndex;
  // What went out before the write: a commit index covering 'x' would count the leader's own copy,
  // not on its disk yet. (Before the fix the learner applied 'x', and the leader's log reopened
  // after a power cut at this point ended before it: the learner held a write the group lost.)
  const early = leader.sent.filter((m) => (m.type === "append" || m.type === "heartbeat") && m.commit >= index);
  expect(early).toEqual([]);
  release();
  await answered;
  await waitFor(() => learner.applied.includes("x"), { what: "the learner to apply 'x' once the leader wrote it" });
});

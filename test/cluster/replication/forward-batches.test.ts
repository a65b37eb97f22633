import { afterEach, expect, test } from "bun:test";
import { ForwardBatches, type ForwardedWrite } from "../../../src/cluster/replication/forward-batches.ts";
import { startTcpGroup, type TcpGroup } from "./tcp-group.ts";

const write = (seq: number, bytes: number): ForwardedWrite => ({ seq, data: new Uint8Array(bytes) });
/** Lets the microtasks queued so far run (a batch leaves in one). */
const turnEnds = () => new Promise<void>((resolve) => setTimeout(resolve, 0));

test("the writes of one turn go to each leader in one batch, in order; the next turn's in another", async () => {
  const sent: [string, number[]][] = [];
  const batches = new ForwardBatches((leader, writes) => sent.push([leader, writes.map((w) => w.seq)]));
  for (let seq = 1; seq <= 5; seq++) batches.add(seq === 3 ? "n3" : "n2", write(seq, 10));
  expect(sent).toEqual([]);
  await turnEnds();
  expect(sent).toEqual([
    ["n2", [1, 2, 4, 5]],
    ["n3", [3]],
  ]);
  batches.add("n2", write(6, 10));
  await turnEnds();
  expect(sent.at(-1)).toEqual(["n2", [6]]);
});

test("a batch stays within its byte bound: a write that would pass it sends the batch at once; a larger write goes alone", async () => {
  const sent: number[][] = [];
  const batches = new ForwardBatches((_, writes) => sent.push(writes.map((w) => w.seq)), 100);
  batches.add("n2", write(1, 60));
  batches.add("n2", write(2, 30));
  batches.add("n2", write(3, 30)); // 120 > 100: [1, 2] leaves now
  expect(sent).toEqual([[1, 2]]);
  batches.add("n2", write(4, 500)); // alone past the bound
  batches.add("n2", write(5, 1));
  await turnEnds();
  expect(sent).toEqual([[1, 2], [3], [4], [5]]);
});

const groups: TcpGroup[] = [];
afterEach(async () => {
  for (const group of groups.splice(0)) await group.close();
});

test("over TCP: large writes a follower takes in one turn are all applied, though together they pass the peer payload limit", async () => {
  // The writes of one turn travel to the leader in one peer call (propose-batch). Each write here is
  // well within the limits (1 MiB value; 16 MiB request, 16 MiB peer payload), but twenty of them
  // in one frame are not: the transport drops a payload over its limit, and the writes would wait
  // out the forward timeout and end "outcome unknown" instead of being applied.
  const group = await startTcpGroup();
  groups.push(group);
  const leader = await group.leader();
  const follower = group.members.find((m) => m !== leader)!;
  const value = new Uint8Array(1024 * 1024).fill(7);
  const writes = Array.from({ length: 20 }, (_, i) => follower.db.write([{ key: `big${i}`, value }]));
  const outcomes = await Promise.allSettled(writes);
  const failed = outcomes.flatMap((o, i) => (o.status === "rejected" ? [`big${i}: ${String(o.reason)}`] : []));
  expect(failed).toEqual([]);
  await follower.db.readBarrier();
  expect(follower.db.read(["big0", "big19"]).records.map((r) => r.value?.byteLength)).toEqual([
    value.byteLength,
    value.byteLength,
  ]);
}, 30_000);

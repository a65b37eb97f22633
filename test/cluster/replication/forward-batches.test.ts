import { afterEach, expect, test } from "bun:test";
import { startTcpGroup, type TcpGroup } from "./tcp-group.ts";

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

import { expect, test } from "bun:test";
import { TIMESTAMPS_METHOD } from "../../../src/cluster/meta/timestamp-rpc.ts";
import { ByteWriter } from "../../../src/io/format/bytes.ts";
import { rejectionMessage } from "../../helpers/rejection.ts";
import { inOffice, names, startMetaGroup } from "./meta-nodes.ts";

test("every node gets timestamps from the meta leader: a turn's requests go as one call, each gets its own run, and later requests get later timestamps", async () => {
  const nodes = await startMetaGroup({ timestampWindow: 100 });
  const leader = await inOffice(nodes);
  let previousMax = 0;
  for (let round = 0; round < 10; round++) {
    // Each node asks 20 times in one turn (counts 1..5); no two runs overlap, all above the last round's.
    const asked = nodes.flatMap((node) =>
      Array.from({ length: 20 }, (_, i) => {
        const count = 1 + ((i + round) % 5);
        return node.timestamps.take(count).then((first) => ({ first, count }));
      }),
    );
    const runs = (await Promise.all(asked)).sort((a, b) => a.first - b.first);
    for (let i = 1; i < runs.length; i++)
      expect(runs[i]!.first).toBeGreaterThanOrEqual(runs[i - 1]!.first + runs[i - 1]!.count);
    expect(runs[0]!.first).toBeGreaterThan(previousMax);
    previousMax = runs.at(-1)!.first + runs.at(-1)!.count - 1;
  }
  // A follower's requests of a turn went as one call: 10 rounds, 10 calls.
  for (const node of nodes) expect(node.timestampCalls).toBe(node === leader ? 0 : 10);
});

test("a follower's requests go on after the meta leader dies, above everything handed out before", async () => {
  const nodes = await startMetaGroup({ timestampWindow: 50 });
  const leader = await inOffice(nodes);
  const follower = nodes.find((node) => node !== leader)!;
  const before = await follower.timestamps.take(10);
  leader.stop();
  const after = await follower.timestamps.take(1);
  expect(after).toBeGreaterThan(before + 9);
}, 15_000);

test("a request for no timestamps, or too many, is refused by the leader with a clear error", async () => {
  const nodes = await startMetaGroup();
  const leader = await inOffice(nodes);
  const follower = nodes.find((node) => node !== leader)!;
  const ask = (count: number) =>
    follower.rpc.call(
      names.get(leader.id)!,
      TIMESTAMPS_METHOD,
      new ByteWriter(8).u8(1).varint(count).written().slice(),
      1_000,
    );
  expect(await rejectionMessage(ask(0))).toMatch("a request for 0 timestamps (1 to 1000000)");
  expect(await rejectionMessage(ask(2_000_000))).toMatch("a request for 2000000 timestamps (1 to 1000000)");
  expect(await ask(3)).toBeInstanceOf(Uint8Array);
});

test("a turn's requests adding up past one call's bound go as several calls, each run still its own; one request past the bound is refused", async () => {
  const nodes = await startMetaGroup({ timestampWindow: 100 });
  const leader = await inOffice(nodes);
  const follower = nodes.find((node) => node !== leader)!;
  const before = follower.timestampCalls;
  const runs = await Promise.all(
    [600_000, 600_000, 5].map((count) => follower.timestamps.take(count).then((first) => ({ first, count }))),
  );
  expect(follower.timestampCalls - before).toBe(2);
  runs.sort((x, y) => x.first - y.first);
  for (let i = 1; i < runs.length; i++)
    expect(runs[i]!.first).toBeGreaterThanOrEqual(runs[i - 1]!.first + runs[i - 1]!.count);
  expect(await rejectionMessage(follower.timestamps.take(1_000_001))).toMatch(
    "a request for 1000001 timestamps (1 to 1000000)",
  );
});

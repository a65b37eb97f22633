import { expect, test } from "bun:test";
import type { PartitionRead } from "../../../src/cluster/txn/partition-group.ts";
import { waitFor } from "../../helpers/wait.ts";
import { startMetaGroup } from "../meta/meta-nodes.ts";
import { startPartitionZero } from "./partition-zero.ts";

const bytes = (s: string) => new TextEncoder().encode(s);
const text = (found: PartitionRead) =>
  "record" in found ? new TextDecoder().decode(found.record.value ?? new Uint8Array()) : "locked";

/**
 * A one-round write's timestamp is asked for by partition 0's leader A; before it arrives, the
 * leadership goes to B, which serves a read at a newer timestamp T2, and comes back to A. A's
 * pipeline then proposes the write at its old timestamp T1 < T2: the read at T2 already answered
 * without it, and a read at the same T2 afterwards sees it (a snapshot that changed; a reader that
 * read at T2 and wrote with readAt T2 is not refused either). TiKV does not let a new leader commit
 * at a timestamp taken before it led (max_ts sync after a leader change).
 */
test("a write whose timestamp was asked for before a leader change and back never lands below a read already served", async () => {
  const nodes = await startMetaGroup({ timestampWindow: 100 });
  /** Per node: a gate holding its next timestamp answer (taken from the oracle, not yet handed to the pipeline). */
  const held = new Map<number, { release?: () => void; armed: boolean; taken?: number }>(
    nodes.map((node) => [node.id, { armed: false }]),
  );
  const groups = await startPartitionZero(nodes, async (node, first) => {
    const gate = held.get(node.id)!;
    if (!gate.armed) return first;
    gate.armed = false;
    gate.taken = first;
    await new Promise<void>((resolve) => (gate.release = resolve));
    return first;
  });
  const leader = () =>
    waitFor(
      () => {
        const found = [...groups.values()].find((group) => group.driver.leads);
        return found && [...groups.values()].every((g) => g.driver.leader === found.driver.leader) ? found : undefined;
      },
      { what: "one leader of partition 0" },
    );
  const a = await leader();
  const aId = a.driver.leader;
  await a.write([{ key: "x", value: bytes("v0") }]);

  // A asks for the late write's timestamp; the answer is held.
  held.get(aId)!.armed = true;
  const late = a.write([{ key: "x", value: bytes("late") }]);
  await waitFor(() => held.get(aId)!.release, { what: "A's timestamp request to be held" });

  // The leadership goes to B, which serves a read at a newer timestamp.
  const bId = aId === 1 ? 2 : 1;
  a.driver.transferLeadership(bId);
  const b = await waitFor(() => (groups.get(bId)!.driver.leads ? groups.get(bId)! : undefined), {
    what: "B to lead partition 0",
  });
  const t2 = await nodes[0]!.timestamps.take(1);
  expect(t2).toBeGreaterThan(held.get(aId)!.taken!);
  const before = (await b.read(["x"], t2)).map(text);
  expect(before).toEqual(["v0"]);

  // Back to A, whose pipeline then proposes the held write at its old timestamp.
  await waitFor(
    () => {
      b.driver.transferLeadership(aId);
      return a.driver.leads;
    },
    { what: "A to lead partition 0 again", intervalMs: 50 },
  );
  held.get(aId)!.release!();
  const outcome = await late.then(
    (done) => done,
    () => undefined,
  );
  // Either the late write is refused (a retry is safe), or a read at t2 still says what it said.
  if (outcome === undefined) return;
  const after = (await (await leader()).read(["x"], t2)).map(text);
  expect({ lateTs: outcome.ts, t2, readAtT2: after }).toEqual({ lateTs: outcome.ts, t2, readAtT2: before });
}, 30_000);

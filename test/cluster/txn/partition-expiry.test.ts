import { expect, test } from "bun:test";
import type { PartitionGroup, PartitionRead } from "../../../src/cluster/txn/partition-group.ts";
import { waitFor } from "../../helpers/wait.ts";
import type { MetaNode } from "../meta/meta-nodes.ts";
import { leaderOf, startPartitions } from "./partition-nodes.ts";

const bytes = (text: string) => new TextEncoder().encode(text);
const text = (found: PartitionRead) =>
  "record" in found ? found.record.value && new TextDecoder().decode(found.record.value) : "locked";

/** The keys' values on `leader` now (a timestamp from the oracle). */
async function valuesNow(nodes: readonly MetaNode[], leader: PartitionGroup, keys: readonly string[]) {
  return (await leader.read(keys, await nodes[0]!.timestamps.take(1))).map(text);
}

test("a TTL expiry never deletes a version written after the expiring one: a transaction's commit landing below a newer key's revision, between the sweeper's look and the delete", async () => {
  // The partition leader's oracle requests can be held: the expiry's delete waits for its timestamp.
  let held: PromiseWithResolvers<void> | undefined;
  let waiting = 0;
  const { nodes, groups } = await startPartitions(1, async (node, count) => {
    if (held) {
      waiting++;
      await held.promise;
    }
    return node.timestamps.take(count);
  });
  const p0 = await leaderOf(groups, 0, nodes);
  const oracle = nodes[0]!.timestamps;
  const expiresAtMs = Date.now() + 1_500;
  // a and b expire together; a transaction writes a (no TTL) with a commit timestamp below b's revision.
  const a = await p0.write([{ key: "a", value: bytes("a1"), expiresAtMs }]);
  const startTs = await oracle.take(1);
  const lockTtl = Date.now() + 60_000;
  const prewrite = { type: "prewrite", startTs, primary: "a", expiresAtMs: lockTtl } as const;
  expect(await p0.propose({ ...prewrite, mutations: [{ key: "a", value: bytes("txn") }] })).toEqual({ ok: true });
  const commitTs = await oracle.take(1);
  const b = await p0.write([{ key: "b", value: bytes("b1"), expiresAtMs }]);
  expect(a.ts < commitTs && commitTs < b.ts).toBe(true);
  // The deadline passes: the sweeper sees a and b as written with their TTLs (a is only locked), and
  // its delete waits for a timestamp while the transaction commits a.
  held = Promise.withResolvers<void>();
  await waitFor(() => waiting > 0, { what: "the expiry's delete to ask for its timestamp", timeoutMs: 10_000 });
  expect(await p0.propose({ type: "commit", startTs, commitTs, keys: ["a"], primary: "a" })).toEqual({ ok: true });
  held.resolve();
  held = undefined;
  await waitFor(async () => (await valuesNow(nodes, p0, ["b"]))[0] === undefined, {
    what: "b to expire",
    timeoutMs: 10_000,
  });
  // a's TTL was its first version's: the transaction's write of it stays.
  expect(await valuesNow(nodes, p0, ["a"])).toEqual(["txn"]);
}, 30_000);

test("a key put with a TTL expires after its partition is compacted past the version", async () => {
  const { nodes, groups } = await startPartitions(1);
  const p0 = await leaderOf(groups, 0, nodes);
  await p0.write([{ key: "a", value: bytes("a1"), expiresAtMs: Date.now() + 300 }]);
  const other = await p0.write([{ key: "other", value: bytes("o") }]);
  // A Compact of the cluster (as etcd clients do routinely) to a revision above the TTL'd version.
  expect(await p0.compact(other.ts)).toBe(other.ts);
  await waitFor(async () => (await valuesNow(nodes, p0, ["a"]))[0] === undefined, {
    what: "a to expire",
    timeoutMs: 5_000,
    detail: async () => JSON.stringify(await valuesNow(nodes, p0, ["a", "other"])),
  });
  expect(await valuesNow(nodes, p0, ["other"])).toEqual(["o"]);
}, 30_000);

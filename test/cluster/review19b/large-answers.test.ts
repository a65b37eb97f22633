import { expect, test } from "bun:test";
import { partitionOf } from "../../../src/cluster/ring/partition-of.ts";
import { partitionedClusters, setWhenReady } from "../../helpers/partitioned-cluster.ts";
import { waitFor } from "../../helpers/wait.ts";

/**
 * A Get or Scan answer within the server's limits (64 MiB a response, 1 MiB a value) read from a
 * partition this node does not lead travels as one peer RPC answer. The peer transport drops any
 * payload over 16 MiB when sent (TRANSPORT_DEFAULTS.payloadBytesMax), so the caller waits for an
 * answer that never comes, asks again (reads are retried: 100 rounds of 2 s calls), and the client
 * times out. A single server answers the same requests at once.
 */
const PARTITIONS = 8;
const clusters = partitionedClusters();

test("a 20 MiB Get and Scan of keys in a partition led by another node are answered, as on one server", async () => {
  const { startAll } = clusters({ partitionsOf: () => PARTITIONS });
  const nodes = await startAll();
  const partitionOfKey = (key: string) => partitionOf(new TextEncoder().encode(key), PARTITIONS);
  const keys = Array.from({ length: 400 }, (_, i) => `big/${String(i).padStart(3, "0")}`)
    .filter((key) => partitionOfKey(key) === partitionOfKey("big/000"))
    .slice(0, 20);
  expect(keys.length).toBe(20);
  const mib = "x".repeat(1 << 20);
  await setWhenReady(nodes[0]!, [[keys[0]!, mib]]);
  for (const key of keys.slice(1)) await nodes[0]!.client.set([[key, mib]]);
  const partition = partitionOfKey(keys[0]!);
  // A node that does not lead the keys' partition: its reads go to the leader over peer RPC.
  const leader = await waitFor(
    async () => {
      const ring = await nodes[0]!.client.ring();
      return nodes.find((node) => node.name === ring.partitions[partition]!.leader);
    },
    { what: `a leader of partition ${partition}` },
  );
  const away = nodes.find((node) => node !== leader)!;
  // The leader reads its own replica: no peer call, answered.
  expect((await leader.client.get(keys)).records.map((r) => r.value?.byteLength)).toEqual(keys.map(() => 1 << 20));
  const started = Date.now();
  const got = await away.client.get(keys);
  expect(got.records.map((r) => r.value?.byteLength)).toEqual(keys.map(() => 1 << 20));
  const page = await away.client.scanPage({ prefix: "big/", limit: 20 });
  expect(page.records.map((r) => r.key)).toEqual(keys);
  expect(Date.now() - started).toBeLessThan(10_000);
}, 120_000);

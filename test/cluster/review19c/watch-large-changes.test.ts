import { expect, test } from "bun:test";
import type { WatchEvent } from "../../../src/client/client.ts";
import { partitionOf } from "../../../src/cluster/ring/partition-of.ts";
import { partitionedClusters, setWhenReady } from "../../helpers/partitioned-cluster.ts";
import { waitFor } from "../../helpers/wait.ts";

/**
 * txn.changes answers a page of up to 1,000 changes, each with its value and its previous value
 * (always, whatever the watch's prev_value), with no bound on bytes — unlike txn.read and txn.scan,
 * which stop at ANSWER_BYTES_MAX (4 MiB) since the second review. A watch served by a node that
 * does not lead a partition asks it over peer RPC, whose transport drops a payload over 16 MiB: a
 * watch over a few 1 MiB values (each value and previous counted) never gets its page, where one
 * server streams them at once.
 */
const PARTITIONS = 8;
const COUNT = 9;
const clusters = partitionedClusters();

/**
 * Nine overwrites of one key with 1 MiB values: 9 MiB of events, within a watcher's queue (16 MiB),
 * but the page's answer carries their previous values too, 17 MiB. Watched through the partition's
 * leader (no peer call) they arrive at once (checked: 2 s).
 */
test("a watch through a node not leading the partition delivers 9 overwrites of 1 MiB values", async () => {
  const { startAll } = clusters({ partitionsOf: () => PARTITIONS });
  const nodes = await startAll();
  const mib = (fill: string) => fill.repeat(1 << 20);
  const key = "big/0";
  const first = await setWhenReady(nodes[0]!, [[key, mib("a")]]);
  for (let i = 1; i < COUNT; i++) await nodes[0]!.client.set([[key, mib(i % 2 ? "b" : "a")]]);
  const partition = partitionOf(new TextEncoder().encode(key), PARTITIONS);
  const leaderName = await waitFor(
    async () => (await nodes[0]!.client.ring()).partitions[partition]!.leader || undefined,
    { what: `a leader of partition ${partition}` },
  );
  const away = nodes.find((node) => node.name !== leaderName)!;
  const abort = new AbortController();
  const seen: WatchEvent[] = [];
  let failure: unknown;
  const started = Date.now();
  const reading = (async () => {
    try {
      for await (const event of away.client.watch({ key, startRevision: first.revision }, abort.signal)) {
        seen.push(event);
        if (seen.length === COUNT) abort.abort();
      }
    } catch (error) {
      failure = error;
    }
  })();
  await waitFor(() => seen.length === COUNT || failure !== undefined, {
    what: `${COUNT} events`,
    timeoutMs: 20_000,
    detail: () => `${seen.length} events after ${Date.now() - started} ms; failure: ${String(failure)}`,
  }).finally(() => abort.abort());
  await reading;
  expect(failure).toBeUndefined();
  expect(seen.length).toBe(COUNT);
}, 120_000);

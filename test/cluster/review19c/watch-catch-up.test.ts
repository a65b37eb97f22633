import { expect, test } from "bun:test";
import { partitionedWatches } from "../../../src/node/partitioned-watches.ts";
import type { WatchBatch, WatchEnd } from "../../../src/storage/watch/watch-hub.ts";
import { waitFor } from "../../helpers/wait.ts";
import { startReviewDatabase } from "../review19b/db.ts";

/**
 * A watch resumed from a revision with more history behind it than a watcher's queue holds (16 MiB
 * or 10,000 events by default). The single server's hub reads catch-up pages as the client takes
 * them (watch-hub.ts: `next` reads a page once the queue is empty). PartitionedWatcher.deliver
 * queues everything every partition resolved in one go, and the run loop asks again at once while
 * pages are full: the watcher overflows before the client could take anything, with resumeRevision
 * the revision it started from, so a resumed watch overflows the same way, for ever. Here the
 * client takes every batch the moment it is woken, and still gets nothing.
 */
test("a watch resumed 20 MiB behind catches up, as on one server, instead of overflowing at its start revision", async () => {
  const { db, access, coordinator } = await startReviewDatabase(2);
  const watches = partitionedWatches({ access, coordinator, partitions: () => 2, pollMs: 10 });
  const mib = new Uint8Array(1 << 20);
  const first = await db.write([{ key: "big/0", value: mib }]);
  for (let i = 1; i < 20; i++) await db.write([{ key: `big/${i}`, value: mib }]);

  const taken: WatchBatch[] = [];
  let ended: WatchEnd | undefined;
  const watcher = watches.watch(
    { start: "big/", end: "big0", startRevision: first.revision, prevValue: false },
    {
      wake: () => {
        for (let batch = watcher.take(); batch; batch = watcher.take()) taken.push(batch);
      },
      end: (end) => {
        ended = end;
      },
    },
  );
  await waitFor(() => taken.length === 20 || ended, { what: "20 batches, or the end", timeoutMs: 10_000 });
  const outcome = { taken: taken.length, ended };
  watches.close();
  expect(outcome).toEqual({ taken: 20, ended: undefined });
}, 60_000);

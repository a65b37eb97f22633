import { expect, test } from "bun:test";
import { partitionedWatches } from "../../../src/node/partitioned-watches.ts";
import { bytes, startReviewDatabase } from "../review19b/db.ts";

const WATCHERS = 10;

/**
 * Watchers of a quiet prefix while the cluster writes elsewhere. Each poll (every pollMs, serve's
 * Raft tick, 100 ms), PartitionGroup.changes calls store.changes after the revision the watcher
 * reached; once anything was written on the partition since (any key, in the range or not),
 * changesSince walks every key of the range and its versions to find what is newer — 18 ms for
 * 100,000 keys (memory store, measured). So each watcher of a large prefix costs a walk of all its
 * keys per partition per tick, whatever is written where; the single server's hub costs it only
 * the events of its range. Measured: the process's CPU over two seconds, 100,000 keys under the
 * prefix, a writer of other keys running, without and with ten watchers of the prefix.
 */
// Each partition now remembers the keys it wrote lately (RecentChanges): a poll of a range nothing
// was written in since answers without the walk.
test("ten watchers of a quiet prefix of 100,000 keys cost little CPU while other keys are written", async () => {
  const { db, access, coordinator } = await startReviewDatabase(2);
  const value = bytes("v");
  for (let c = 0; c < 100; c++)
    await db.write(Array.from({ length: 1_000 }, (_, i) => ({ key: `i/${c}/${String(i).padStart(4, "0")}`, value })));
  let writing = true;
  const writer = (async () => {
    for (let n = 0; writing; n++) {
      await db.write([
        { key: `other/${n}`, value },
        { key: `other/${n}/b`, value },
      ]);
      await Bun.sleep(20); // a steady trickle of writes elsewhere, not synchronisation
    }
  })();
  const cpuOver = async (ms: number) => {
    const before = process.cpuUsage();
    await Bun.sleep(ms); // a measuring window, not synchronisation
    const used = process.cpuUsage(before);
    return (used.user + used.system) / 1000;
  };
  const without = await cpuOver(2_000);
  const watches = partitionedWatches({ access, coordinator, partitions: () => 2, pollMs: 100 });
  for (let w = 0; w < WATCHERS; w++)
    watches.watch({ start: "i/", end: "i0", startRevision: 0, prevValue: false }, { wake: () => {}, end: () => {} });
  const watching = await cpuOver(2_000);
  watches.close();
  writing = false;
  await writer;
  console.log(`CPU over 2 s: ${without.toFixed(0)} ms without watchers, ${watching.toFixed(0)} ms with ${WATCHERS}`);
  expect(watching - without).toBeLessThan(400); // 20% of a core for ten watchers of a quiet range
}, 120_000);

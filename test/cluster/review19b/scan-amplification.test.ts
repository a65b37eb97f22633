import { expect, test } from "bun:test";
import { TxnCoordinator } from "../../../src/cluster/txn/coordinator.ts";
import { partitionedScans } from "../../../src/node/partitioned-scans.ts";
import { bytes, startReviewDatabase } from "./db.ts";

/**
 * A Scan page is cut by the server's response bytes (bytesMax) only after every partition sent a
 * page of `limit` records: nothing of the byte budget reaches the partitions. A scan of N keys of
 * 1 KiB under a 16 KiB budget (16 records a page) with limit 1,000 moves about
 * P × 1,000 records per 16 returned: every record travels from its partition ~60 times.
 * A single server's page stops at bytesMax (ScanPageCutter).
 */
test("a whole scan cut by bytesMax fetches each record from its partition a bounded number of times", async () => {
  const { db, access, nodes } = await startReviewDatabase(2);
  const keys = Array.from({ length: 1_000 }, (_, i) => `k${String(i).padStart(4, "0")}`);
  const kib = "x".repeat(1024);
  await db.write(keys.map((key) => ({ key, value: bytes(kib) })));
  let fetched = 0;
  const coordinator = new TxnCoordinator({
    access: {
      ...access,
      async scan(partition, range, ts, limit, bytesMax, bypass) {
        const page = await access.scan(partition, range, ts, limit, bytesMax, bypass);
        fetched += page.records.length;
        return page;
      },
    },
    timestamps: (count) => nodes[0]!.timestamps.take(count),
    lockTtlMs: 5_000,
    now: () => Date.now(),
    pause: (ms) => Bun.sleep(ms),
    readTimeoutMs: 5_000,
  });
  const scans = partitionedScans({ coordinator, partitions: () => 2 });
  const size = { limit: 1_000, bytesMax: 16 * 1024 };
  let page = await scans.first({ reverse: false, keysOnly: false }, size, undefined);
  let returned = page.records.length;
  for (let i = 0; i < 200 && page.continuation !== ""; i++) {
    page = await scans.next(page.continuation, size);
    returned += page.records.length;
  }
  expect(returned).toBe(keys.length);
  expect(fetched / returned).toBeLessThan(4);
}, 60_000);

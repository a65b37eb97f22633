import { expect, test } from "bun:test";
import { partitionedScans } from "../../../src/node/partitioned-scans.ts";
import { compareKeys } from "../../../src/storage/mvcc/key-order.ts";
import { bytes, startReviewDatabase } from "./db.ts";

/** Keys across both partitions whose code point order differs from JavaScript's string order. */
test("scan pages follow code point order across partitions, forward and reverse, page by page", async () => {
  const { db, coordinator } = await startReviewDatabase(2);
  const keys = ["a", "b", "\u{E000}", "\u{FFFD}", "\u{10000}", "\u{1F600}", "c\u{E000}", "c\u{10000}", "x", "y"];
  await db.write(keys.map((key) => ({ key, value: bytes(key) })));
  const scans = partitionedScans({ coordinator, partitions: () => 2 });
  const sorted = [...keys].sort(compareKeys);
  for (const reverse of [false, true])
    for (const limit of [1, 2, 3, 100]) {
      const seen: string[] = [];
      let page = await scans.first({ reverse, keysOnly: false }, { limit, bytesMax: 1 << 20 }, undefined);
      seen.push(...page.records.map((r) => r.key));
      for (let i = 0; i < 50 && page.continuation !== ""; i++) {
        page = await scans.next(page.continuation, { limit, bytesMax: 1 << 20 });
        seen.push(...page.records.map((r) => r.key));
      }
      expect({ reverse, limit, seen }).toEqual({ reverse, limit, seen: reverse ? [...sorted].reverse() : sorted });
    }
  // bytesMax of one record's size: a page each.
  let page = await scans.first(
    { reverse: true, keysOnly: false, start: "b", end: "y" },
    { limit: 100, bytesMax: 1 },
    undefined,
  );
  const seen = [...page.records.map((r) => r.key)];
  for (let i = 0; i < 50 && page.continuation !== ""; i++) {
    page = await scans.next(page.continuation, { limit: 100, bytesMax: 1 });
    expect(page.records.length).toBeLessThanOrEqual(1);
    seen.push(...page.records.map((r) => r.key));
  }
  expect(seen).toEqual(sorted.filter((k) => compareKeys(k, "b") >= 0 && compareKeys(k, "y") < 0).reverse());
}, 30_000);

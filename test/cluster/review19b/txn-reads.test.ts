import { expect, test } from "bun:test";
import type { TxnResult } from "../../../src/storage/database.ts";
import { bytes, startReviewDatabase, text } from "./db.ts";

/**
 * Every Txn that writes returns its gets as of its commit revision: a Get at that revision must
 * answer the same, whatever ran concurrently (Sets of the keys it reads, other Txns).
 * Keys: a, c in partition 1; b, d, x in partition 0.
 */
test("a writing Txn's gets equal a Get at its commit revision, under concurrent writers", async () => {
  const { db } = await startReviewDatabase(2);
  await db.write(["a", "b", "c", "d", "x"].map((key) => ({ key, value: bytes("0") })));
  const results: { keys: string[]; result: TxnResult }[] = [];
  const errors: unknown[] = [];
  const txns = Array.from({ length: 8 }, async (_, w) => {
    for (let r = 0; r < 15; r++) {
      try {
        // Compares keys of both partitions, writes none of them; gets one written before and one not.
        const result = await db.txn({
          compares: [
            { key: "a", target: "version", op: ">", number: 0 },
            { key: "b", target: "version", op: ">", number: 0 },
          ],
          success: [{ key: "x", value: bytes(`${w}.${r}`) }, { get: "x" }, { get: "c" }, { get: "d" }],
          failure: [],
        });
        results.push({ keys: ["x", "c", "d"], result });
      } catch (error) {
        errors.push(error);
      }
    }
  });
  const setters = Array.from({ length: 4 }, async (_, w) => {
    for (let r = 0; r < 15; r++)
      try {
        await db.write([{ key: ["a", "b", "c", "d"][w]!, value: bytes(`s${w}.${r}`) }]);
      } catch (error) {
        errors.push(error);
      }
  });
  await Promise.all([...txns, ...setters]);
  expect(errors.map(String)).toEqual([]);
  for (const { keys, result } of results) {
    const at = await db.get(keys, { revision: result.revision });
    expect(result.reads.map((r) => [r.key, text(r.value), r.modRevision, r.version])).toEqual(
      at.records.map((r) => [r.key, text(r.value), r.modRevision, r.version]),
    );
  }
}, 120_000);

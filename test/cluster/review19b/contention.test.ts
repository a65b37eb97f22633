import { expect, test } from "bun:test";
import { bytes, startReviewDatabase } from "./db.ts";

/**
 * etcd's Put never fails for contention: concurrent Sets of the same keys are ordered. Here a Set
 * of keys in two partitions ("a" in 1, "b" in 0) is a two-phase commit; two of them prewriting at
 * once can each lock one partition and both be refused, then both retry. The retries are bounded
 * (50 runs, pauses under 20 ms), so do writers ever run out of turns?
 */
test("concurrent Sets of the same two keys in two partitions all succeed (no livelock into ABORTED)", async () => {
  const { db } = await startReviewDatabase(2);
  const writers = Number(process.env.W ?? 32);
  const rounds = 10;
  const failures: string[] = [];
  await Promise.all(
    Array.from({ length: writers }, async (_, w) => {
      for (let r = 0; r < rounds; r++) {
        try {
          await db.write([
            { key: "a", value: bytes(`${w}.${r}`) },
            { key: "b", value: bytes(`${w}.${r}`) },
          ]);
        } catch (error) {
          failures.push(String(error));
        }
      }
    }),
  );
  expect(failures).toEqual([]);
}, 120_000);

import { expect, test } from "bun:test";
import { bytes, startReviewDatabase, text } from "./db.ts";

/**
 * A coordinator that died after its prewrites leaves locks that stand until their TTL (10 s in
 * `serve`), after which any reader or writer rolls them back. A Get of the key waits the lock out
 * (up to its 5 s read timeout), as TiKV's readers do. A Set of it is retried on the conflict 50
 * times with pauses under 20 ms — about half a second in all — and then answered ABORTED, though
 * the lock would have gone a few seconds later and etcd's Put never fails for contention.
 */
test("a Set of a key locked by a dead coordinator waits the lock out, as a Get does, instead of ABORTED", async () => {
  const { db, access } = await startReviewDatabase(2);
  // "a" is in partition 1, "b" in partition 0: a transaction over both, prewritten, never committed.
  const startTs = (await db.get(["a"])).revision;
  const expiresAtMs = Date.now() + 2_000;
  for (const [partition, key] of [
    [1, "a"],
    [0, "b"],
  ] as const)
    expect(
      await access.propose(partition, {
        type: "prewrite",
        startTs,
        primary: "a",
        expiresAtMs,
        mutations: [{ key, value: bytes("never") }],
      }),
    ).toEqual({ ok: true });
  const started = Date.now();
  // A read waits for the lock's TTL, then rolls it back.
  expect((await db.get(["b"])).records[0]!.value).toBeUndefined();
  expect(Date.now() - started).toBeGreaterThan(1_000);

  // The same for a writer: a fresh lock, a Set of its key.
  const again = (await db.get(["a"])).revision;
  for (const [partition, key] of [
    [1, "a"],
    [0, "b"],
  ] as const)
    await access.propose(partition, {
      type: "prewrite",
      startTs: again,
      primary: "a",
      expiresAtMs: Date.now() + 2_000,
      mutations: [{ key, value: bytes("never") }],
    });
  const written = await db.write([{ key: "b", value: bytes("mine") }]);
  expect(text((await db.get(["b"])).records[0]!.value)).toBe("mine");
  expect(written.revision).toBeGreaterThan(again);
}, 30_000);

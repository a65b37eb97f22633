import { expect, test } from "bun:test";
import { WatchSendBudget } from "../../src/server/watch-send-budget.ts";

test("reservations fit the budget; a waiter is woken by a release; a lone message may exceed it", () => {
  const nowMs = 0;
  const budget = new WatchSendBudget(200, 250, () => nowMs);
  // Half of it for messages in flight, half for queued events.
  expect([budget.inFlightBytesMax, budget.queues.bytesMax]).toEqual([100, 100]);
  const evicted: string[] = [];
  const a = budget.reserve(
    60,
    () => {},
    () => evicted.push("a"),
  )!;
  let woken = 0;
  expect(
    budget.reserve(
      60,
      () => woken++,
      () => {},
    ),
  ).toBeUndefined();
  expect(
    budget.reserve(
      40,
      () => {},
      () => {},
    ),
  ).toBeDefined();
  budget.release(a);
  expect(woken).toBe(1);
  expect(budget.usedBytes).toBe(40);
  budget.release(a); // twice is once
  expect(budget.usedBytes).toBe(40);
  const alone = new WatchSendBudget(200, 250, () => nowMs);
  expect(
    alone.reserve(
      500,
      () => {},
      () => {},
    ),
  ).toBeDefined();
  expect(evicted).toEqual([]);
});

test("a stream stuck past stuckMs is evicted only while others wait for room", () => {
  let nowMs = 0;
  const budget = new WatchSendBudget(200, 250, () => nowMs);
  const evicted: string[] = [];
  budget.reserve(
    100,
    () => {},
    () => evicted.push("stuck"),
  );
  nowMs = 1_000;
  budget.sweep();
  expect(evicted).toEqual([]); // nobody waits: a slow reader keeps its message
  let woken = 0;
  expect(
    budget.reserve(
      10,
      () => woken++,
      () => {},
    ),
  ).toBeUndefined();
  nowMs = 1_100;
  budget.sweep();
  expect(evicted).toEqual(["stuck"]);
  expect(woken).toBe(1);
  expect(budget.usedBytes).toBe(0);
});

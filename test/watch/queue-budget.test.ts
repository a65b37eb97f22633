import { describe, expect, test } from "bun:test";
import { prefixEnd } from "../../src/storage/mvcc/key-order.ts";
import { createMvccStore } from "../../src/storage/mvcc/store.ts";
import type { WriteOp } from "../../src/storage/ops.ts";
import { QUEUED_BATCH_BYTES, QUEUED_EVENT_BYTES } from "../../src/storage/watch/batch-queue.ts";
import { QueueBudget, type ShedReason } from "../../src/storage/watch/queue-budget.ts";
import { createWatchHub, type WatchEnd, type Watcher } from "../../src/storage/watch/watch-hub.ts";
import { put } from "../helpers/storage.ts";

/** A budget whose shedding runs when the test says (the server's runs in a microtask). */
function manualBudget(bytesMax: number) {
  const tasks: (() => void)[] = [];
  const budget = new QueueBudget(bytesMax, (task) => tasks.push(task));
  const settle = () => {
    for (let i = 0; i < 100 && tasks.length > 0; i++) tasks.shift()!();
  };
  return { budget, settle, pending: () => tasks.length };
}

describe("QueueBudget alone", () => {
  test("the diagram: a 70, b 30, c 5 over 100 → a is ended, b and c go on", () => {
    const { budget, settle, pending } = manualBudget(100);
    const shed: [string, ShedReason][] = [];
    const accounts = Object.fromEntries(
      ["a", "b", "c"].map((name) => {
        const account = budget.open((reason) => {
          shed.push([name, reason]);
          account.change(-account.bytes); // what ending a watcher does: its queue is cleared
        });
        return [name, account];
      }),
    );
    accounts.a!.change(70);
    accounts.b!.change(30);
    expect(pending()).toBe(0); // 100 is not over 100
    accounts.c!.change(5);
    accounts.c!.change(0);
    expect(pending()).toBe(1); // one shedding pass however many changes cross the limit
    settle();
    expect(shed).toEqual([["a", { heldBytes: 105, bytesMax: 100, waitingBytes: 70 }]]);
    expect(budget.usedBytes).toBe(35);
    expect(budget.size).toBe(2);
  });

  test("closing counts off what is left; changes after close are ignored; nothing goes negative", () => {
    const { budget } = manualBudget(1_000);
    const account = budget.open(() => {});
    account.change(300);
    account.close();
    expect(budget.usedBytes).toBe(0);
    account.change(-300); // the watcher's queue cleared after its account closed
    account.close();
    expect([budget.usedBytes, budget.size]).toEqual([0, 0]);
  });

  test("a shed callback that frees nothing still leaves the budget (closed), and shedding stops at 3/4", () => {
    const { budget, settle } = manualBudget(100);
    const names: string[] = [];
    for (const [name, bytes] of [
      ["x", 40],
      ["y", 35],
      ["z", 30],
    ] as const)
      budget.open(() => names.push(name)).change(bytes);
    settle();
    // 105 → x closed (65, under 75): y and z stay.
    expect(names).toEqual(["x"]);
    expect(budget.usedBytes).toBe(65);
  });
});

describe("QueueBudget over a hub's watchers", () => {
  function setup(bytesMax: number) {
    const hub = createWatchHub();
    const store = createMvccStore({ historyRevisions: Infinity, onEvents: hub.publish, eventsWanted: hub.listening });
    hub.attach(store);
    const commit = (...ops: WriteOp[]) => store.apply({ revision: store.revision + 1, ops }).revision;
    const { budget, settle } = manualBudget(bytesMax);
    const open = (start: string, end: string | undefined) => {
      const ends: WatchEnd[] = [];
      let watcher: Watcher | undefined;
      const account = budget.open((reason) => watcher?.overflow(`shed with ${reason.waitingBytes} bytes waiting`));
      watcher = hub.watch(
        { start, end, startRevision: 0, prevValue: false, meter: account },
        { wake: () => {}, end: (end) => ends.push(end) },
      );
      return { watcher, ends, account };
    };
    return { hub, commit, budget, settle, open };
  }

  const batchBytes = QUEUED_BATCH_BYTES + QUEUED_EVENT_BYTES;

  test("queues count what they hold of their own; the watcher furthest behind is ended with where to resume", () => {
    const { hub, commit, budget, settle, open } = setup(40 * batchBytes);
    const wide = open("k", prefixEnd("k")); // every key: furthest behind
    const narrow = open("k1", "k1\0"); // one key in four
    const fast = open("k", prefixEnd("k"));
    const fastSeen: number[] = [];
    expect(wide.watcher.take()).toBeUndefined();
    for (let i = 0; i < 36; i++) {
      const revision = commit(put(`k${i % 4}`, "x".repeat(1_000)));
      if (i === 0) expect(wide.watcher.take()!.revision).toBe(revision); // then it stops taking
      for (let batch = fast.watcher.take(); batch; batch = fast.watcher.take()) fastSeen.push(batch.revision);
      settle();
    }
    // Values are not counted (shared): 35 one-event batches for `wide`, 9 for `narrow` crossed 40.
    expect(wide.ends.map((e) => [e.reason, e.resumeRevision])).toEqual([["overflow", 2]]);
    expect(wide.ends[0]!.message).toMatch(/^shed with \d+ bytes waiting; watch again from revision 2 to continue$/);
    expect(wide.watcher.take()).toBeUndefined();
    expect(narrow.ends).toEqual([]);
    expect(narrow.watcher.pendingEvents).toBe(9);
    expect(budget.usedBytes).toBe(9 * batchBytes);
    expect(fastSeen).toEqual(Array.from({ length: 36 }, (_, i) => i + 1));
    expect(hub.size).toBe(2);
  });

  test("one event object per key and revision, shared by every watcher that wants the same fields", () => {
    const { commit, open } = setup(1_000_000);
    const a = open("k", prefixEnd("k"));
    const b = open("k1", "k1\0");
    commit(put("k1", "v"));
    expect(a.watcher.peek()!.events[0]).toBe(b.watcher.peek()!.events[0]!);
    expect(a.account.bytes).toBe(batchBytes);
    // peek leaves the batch queued; take removes it and counts it off.
    expect(a.watcher.take()!.revision).toBe(1);
    expect(a.account.bytes).toBe(0);
  });
});

import { expect, test } from "bun:test";
import fc from "fast-check";
import { TimestampOracle } from "../../../src/cluster/meta/timestamp-oracle.ts";

test("a leader hands out nothing before its first reservation is applied, then consecutive batches; it asks for more at half a window", () => {
  const tso = new TimestampOracle(100);
  expect(tso.take(1)).toBeUndefined(); // not leading
  tso.lead(0);
  expect(tso.take(1)).toBeUndefined();
  expect(tso.wanted()).toBe(100);
  expect(tso.wanted()).toBeUndefined(); // one under way
  tso.reserved(100);
  expect(tso.take(10)).toBe(1);
  expect(tso.take(39)).toBe(11);
  expect(tso.wanted()).toBeUndefined(); // 51 left: not yet
  expect(tso.take(1)).toBe(50);
  expect(tso.wanted()).toBe(200); // half a window left
  expect(tso.take(50)).toBe(51);
  expect(tso.take(1)).toBeUndefined(); // 100 handed out, 200 not applied yet
  tso.reserved(200);
  expect(tso.take(1)).toBe(101);
});

test("a new leader starts above the limit reserved: the rest of the old window is a gap", () => {
  const a = new TimestampOracle(100);
  a.lead(0);
  a.reserved(a.wanted()!);
  expect(a.take(5)).toBe(1);
  a.follow();
  expect(a.take(1)).toBeUndefined();
  const b = new TimestampOracle(100);
  b.lead(100);
  expect(b.take(1)).toBeUndefined();
  expect(b.wanted()).toBe(200);
  b.reserved(200);
  expect(b.take(1)).toBe(101);
});

test("a dropped reservation may be asked for again", () => {
  const tso = new TimestampOracle(10);
  tso.lead(0);
  expect(tso.wanted()).toBe(10);
  tso.reservationFailed();
  expect(tso.wanted()).toBe(10);
});

/**
 * A meta group in the abstract: a log of reservations (its applied limit), a leader epoch, and
 * nodes that may go on taking from their old window after they were deposed, unaware. A batch is
 * returned only once confirmed (the ReadIndex round the caller must make): the confirmation fails
 * when the leadership changed since the take. Whatever the interleaving, the timestamps returned
 * are distinct and increase in the order they are returned.
 */
let longest = 0;
test("property: across leader changes, deposed leaders and dropped reservations, returned timestamps only increase", () => {
  const op = fc.oneof(
    fc.record({ kind: fc.constant("take" as const), node: fc.nat(2), count: fc.integer({ min: 1, max: 30 }) }),
    fc.record({ kind: fc.constant("confirm" as const), node: fc.nat(2) }),
    fc.record({ kind: fc.constant("reserve" as const) }),
    fc.record({ kind: fc.constant("commit" as const) }),
    fc.record({ kind: fc.constant("drop" as const) }),
    fc.record({ kind: fc.constant("elect" as const), node: fc.nat(2), keepsProposal: fc.boolean() }),
  );
  fc.assert(
    fc.property(fc.integer({ min: 2, max: 64 }), fc.array(op, { minLength: 100, maxLength: 300 }), (window, ops) => {
      const nodes = [0, 1, 2].map(() => new TimestampOracle(window));
      let leader = -1;
      let epoch = 0;
      let appliedLimit = 0;
      let proposed: { by: number; epoch: number; through: number } | undefined;
      const pending = new Map<number, { epoch: number; first: number; count: number }[]>();
      const returned: number[] = [];
      for (const o of ops) {
        if (o.kind === "elect") {
          // The old leader is not told: it keeps its window, and may take from it. A reservation it
          // proposed is lost, or committed by the new leader before it leads (its first entry applied).
          if (proposed && o.keepsProposal) appliedLimit = Math.max(appliedLimit, proposed.through);
          proposed = undefined;
          leader = o.node;
          epoch++;
          nodes[leader]!.lead(appliedLimit);
        } else if (o.kind === "take") {
          const first = nodes[o.node]!.take(o.count);
          if (first !== undefined)
            pending.set(o.node, [...(pending.get(o.node) ?? []), { epoch, first, count: o.count }]);
        } else if (o.kind === "confirm") {
          for (const batch of pending.get(o.node) ?? [])
            if (o.node === leader && batch.epoch === epoch)
              for (let t = batch.first; t < batch.first + batch.count; t++) returned.push(t);
          pending.delete(o.node);
        } else if (o.kind === "reserve" && leader >= 0 && proposed === undefined) {
          const through = nodes[leader]!.wanted();
          if (through !== undefined) proposed = { by: leader, epoch, through };
        } else if (o.kind === "commit" && proposed) {
          if (proposed.epoch === epoch) {
            appliedLimit = Math.max(appliedLimit, proposed.through);
            nodes[leader]!.reserved(appliedLimit);
          }
          proposed = undefined;
        } else if (o.kind === "drop" && proposed) {
          if (proposed.epoch === epoch) nodes[proposed.by]!.reservationFailed();
          proposed = undefined;
        }
      }
      for (let i = 1; i < returned.length; i++) expect(returned[i]!).toBeGreaterThan(returned[i - 1]!);
      longest = Math.max(longest, returned.length);
    }),
    { numRuns: 500 },
  );
  // The runs get far enough to mean something: batches returned across several leaders.
  expect(longest).toBeGreaterThan(40);
});

test("a batch larger than what is left, or than a window, gets a reservation with room for it", () => {
  const tso = new TimestampOracle(100);
  tso.lead(0);
  tso.reserved(tso.wanted()!);
  expect(tso.take(45)).toBe(1);
  // 55 left: more than half a window, but not enough for 60.
  expect(tso.take(60)).toBeUndefined();
  expect(tso.wanted()).toBe(200);
  tso.reserved(200);
  expect(tso.take(60)).toBe(46);
  // Past a whole window at once.
  expect(tso.take(250)).toBeUndefined();
  expect(tso.wanted()).toBe(200 + 250);
  tso.reserved(450);
  expect(tso.take(250)).toBe(106);
});

import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { checkLinearizability } from "./checker.ts";
import { type PlannedOperation, recordRun } from "./generate.ts";
import { isUnknown, type Operation } from "./history.ts";
import { type KvInput, type KvOutput, kvModel } from "./kv-model.ts";
import type { SequentialModel } from "./model.ts";
import { type RegisterInput, type RegisterOutput, registerModel } from "./register-model.ts";

/** A value no generated write produces. */
const FORGED = "forged";
const value = fc.constantFrom("a", "b", "c");
const key = fc.constantFrom("x", "y", "z");

/**
 * Operations in sequential order, each one's linearization point 10 time units after the previous
 * one's, its interval reaching up to 40 units either side (so overlapping up to 8 others).
 */
function plans<I>(input: fc.Arbitrary<I>): fc.Arbitrary<PlannedOperation<I>[]> {
  const one = fc.record({
    input,
    lead: fc.nat(40),
    lag: fc.nat(40),
    outcome: fc.constantFrom<PlannedOperation<I>["outcome"]>("known", "known", "known", "known", "unknown", "lost"),
  });
  return fc.array(one, { minLength: 1, maxLength: 40 }).map((ops) =>
    ops.map(({ input, lead, lag, outcome }, i) => {
      const point = 10 * i;
      return { client: i % 7, input, call: point - lead, point, ret: point + lag, outcome };
    }),
  );
}

/**
 * Every recorded run is linearizable; forging one read's answer to a value never written makes it
 * not. `forge` returns the operation with a forged output, or null when it is not a known read.
 */
function checkRuns<S, I, O>(
  model: SequentialModel<S, I, O>,
  input: fc.Arbitrary<I>,
  forge: (op: Operation<I, O>) => Operation<I, O> | null,
) {
  fc.assert(
    fc.property(plans(input), fc.nat(), (plan, pick) => {
      const history = recordRun(model, plan);
      const verdict = checkLinearizability(history, model, { timeoutMs: 5_000 });
      if (verdict.result !== "ok") throw new Error(`a recorded run is not found linearizable:\n${verdict.explanation}`);
      const reads = history.flatMap((op, i) => (forge(op) === null ? [] : [i]));
      if (reads.length === 0) return;
      const victim = reads[pick % reads.length]!;
      const forged = history.map((op, i) => (i === victim ? forge(op)! : op));
      const caught = checkLinearizability(forged, model, { timeoutMs: 5_000 });
      expect(caught.result).toBe("illegal");
    }),
    { numRuns: 300 },
  );
}

describe("random recorded runs", () => {
  test("register: linearizable as recorded, illegal once a read is forged", () => {
    const input = fc.oneof(
      fc.constant<RegisterInput>({ op: "read" }),
      value.map((v): RegisterInput => ({ op: "write", value: v })),
      fc.record({ op: fc.constant("cas" as const), expected: fc.option(value, { nil: null }), value }),
    );
    checkRuns(registerModel, input, (op: Operation<RegisterInput, RegisterOutput>) =>
      op.input.op === "read" && !isUnknown(op) ? { ...op, output: FORGED } : null,
    );
  });

  test("key-value: linearizable as recorded, illegal once a get is forged", () => {
    const input = fc.oneof(
      fc.array(key, { minLength: 1, maxLength: 2 }).map((keys): KvInput => ({ op: "get", keys })),
      fc
        .array(fc.record({ key, value }), { minLength: 1, maxLength: 2 })
        .map((records): KvInput => ({ op: "put", records })),
      key.map((k): KvInput => ({ op: "delete", keys: [k] })),
      fc.record({ key, expected: fc.option(value, { nil: null }), value }).map(
        ({ key, expected, value }): KvInput => ({
          op: "txn",
          compares: [{ key, value: expected }],
          success: [{ type: "put", key, value }],
          failure: [{ type: "get", key }],
        }),
      ),
    );
    checkRuns(kvModel, input, (op: Operation<KvInput, KvOutput>) =>
      op.input.op === "get" && !isUnknown(op) ? { ...op, output: { values: op.input.keys.map(() => FORGED) } } : null,
    );
  });
});

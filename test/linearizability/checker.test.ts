import { describe, expect, test } from "bun:test";
import { checkLinearizability } from "./checker.ts";
import type { Operation } from "./history.ts";
import { type RegisterInput, type RegisterOutput, registerModel } from "./register-model.ts";

type Op = Operation<RegisterInput, RegisterOutput>;

describe("checkLinearizability", () => {
  test("answers unknown, not ok, when its budget runs out", () => {
    // 40 concurrent writes of distinct values, then a read of none of them: proving that no order
    // of the writes explains the read means visiting 40 × 2^39 configurations.
    const writes: Op[] = Array.from({ length: 40 }, (_, i) => ({
      client: i,
      input: { op: "write", value: `w${i}` },
      call: 0,
      ret: 10,
    }));
    const history: Op[] = [
      ...writes,
      { client: 40, input: { op: "read" }, output: "never written", call: 11, ret: 12 },
    ];
    const verdict = checkLinearizability(history, registerModel, { timeoutMs: 50 });
    expect(verdict.result).toBe("unknown");
    expect(verdict.result === "unknown" && verdict.explanation).toBe(
      "no verdict: the 50 ms budget ran out while searching the whole history (41 operations), " +
        "after 0 of 1 partitions were found linearizable",
    );
    // The budget is kept to within a few clock looks, not overrun by a whole search.
    expect(verdict.elapsedMs).toBeLessThan(1_000);
    // Given the same budget, a small illegal history is still found illegal.
    expect(checkLinearizability([...writes.slice(0, 4), history[40]!], registerModel, { timeoutMs: 50 }).result).toBe(
      "illegal",
    );
  });

  test("refuses a history no client could have recorded", () => {
    const read = (call: number, ret: number): Op => ({ client: 1, input: { op: "read" }, output: null, call, ret });
    expect(() => checkLinearizability([read(5, 4)], registerModel, { timeoutMs: 50 })).toThrow(
      "operation 0: ret 4 is before its call 5",
    );
    expect(() => checkLinearizability([read(Number.NaN, 4)], registerModel, { timeoutMs: 50 })).toThrow(
      "operation 0: call NaN is not a finite time",
    );
  });
});

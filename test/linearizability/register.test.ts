import { describe, expect, test } from "bun:test";
import { checkLinearizability } from "./checker.ts";
import type { Operation } from "./history.ts";
import { type RegisterInput, type RegisterOutput, type RegisterValue, registerModel } from "./register-model.ts";

type Op = Operation<RegisterInput, RegisterOutput>;
const NEVER = Number.POSITIVE_INFINITY;
const write = (client: number, call: number, ret: number, value: string): Op => ({
  client,
  input: { op: "write", value },
  call,
  ret,
});
const read = (client: number, call: number, ret: number, value: RegisterValue): Op => ({
  client,
  input: { op: "read" },
  output: value,
  call,
  ret,
});
const cas = (client: number, call: number, ret: number, expected: RegisterValue, value: string, swapped: boolean) => ({
  client,
  input: { op: "cas" as const, expected, value },
  output: swapped,
  call,
  ret,
});
const check = (history: Op[]) => checkLinearizability(history, registerModel, { timeoutMs: 5_000 });

describe("linearizable register histories", () => {
  test("two concurrent writes: later reads may see them in either order, but agree on it", () => {
    const writes = [write(1, 0, 10, "a"), write(2, 0, 10, "b")];
    expect(check([...writes, read(3, 11, 12, "a")]).result).toBe("ok");
    expect(check([...writes, read(3, 11, 12, "b")]).result).toBe("ok");
    // During the writes a reader may see one, then the other: either order of the writes.
    expect(check([...writes, read(3, 1, 2, "a"), read(3, 3, 4, "b"), read(4, 11, 12, "b")]).result).toBe("ok");
    expect(check([...writes, read(3, 1, 2, "b"), read(3, 3, 4, "a"), read(4, 11, 12, "a")]).result).toBe("ok");
  });

  test("a read overlapping a write sees the old value or the new one", () => {
    const before = [write(1, 0, 2, "old"), write(1, 5, 10, "new")];
    expect(check([...before, read(2, 6, 7, "old")]).result).toBe("ok");
    expect(check([...before, read(2, 6, 7, "new")]).result).toBe("ok");
    // Seeing the new value, then the old one again, is not possible, even within the write.
    expect(check([...before, read(2, 6, 7, "new"), read(2, 8, 9, "old")]).result).toBe("illegal");
  });

  test("a write of unknown outcome that a later read observes took effect", () => {
    const history = [write(1, 0, 1, "a"), write(2, 2, NEVER, "b"), read(3, 50, 51, "b"), read(3, 52, 53, "b")];
    expect(check(history).result).toBe("ok");
    // Once observed it stays: a later read of the value it overwrote is stale.
    expect(check([...history, read(4, 60, 61, "a")]).result).toBe("illegal");
  });

  test("a write of unknown outcome that nobody observes may never have happened", () => {
    const history = [write(1, 0, 1, "a"), write(2, 2, NEVER, "b"), read(3, 50, 51, "a"), read(3, 52, 53, "a")];
    expect(check(history).result).toBe("ok");
  });

  test("a write of unknown outcome can take effect long after its client gave up", () => {
    const history = [write(2, 0, NEVER, "late"), read(1, 10, 11, null), read(1, 20, 21, "late")];
    expect(check(history).result).toBe("ok");
  });

  test("compare-and-set: of two racing on the same old value one wins, and reads agree", () => {
    const history = [
      write(1, 0, 1, "0"),
      cas(2, 2, 6, "0", "x", true),
      cas(3, 2, 6, "0", "y", false),
      read(4, 7, 8, "x"),
    ];
    expect(check(history).result).toBe("ok");
  });
});

describe("non-linearizable register histories", () => {
  test("a stale read after a completed write", () => {
    const verdict = check([write(1, 0, 1, "a"), write(1, 2, 3, "b"), read(2, 4, 5, "a")]);
    expect(verdict.result).toBe("illegal");
    if (verdict.result !== "illegal") return;
    // The two writes fit; the read cannot follow them.
    expect(verdict.prefix.map((p) => p.index)).toEqual([0, 1]);
    expect(verdict.stuck).toEqual([{ index: 2, operation: expect.anything(), reason: "impossible" }]);
    expect(verdict.explanation).toContain(`#2 client 2 [4, 5] read → "a"  its output is impossible here`);
    expect(verdict.explanation).toContain(`after it the state is "b"`);
  });

  test("two readers see two concurrent writes in opposite orders", () => {
    const history = [
      write(1, 0, 10, "a"),
      write(2, 0, 10, "b"),
      read(3, 1, 2, "a"),
      read(3, 3, 4, "b"),
      read(4, 1, 2, "b"),
      read(4, 3, 4, "a"),
    ];
    expect(check(history).result).toBe("illegal");
  });

  test("a read of a value never written", () => {
    const verdict = check([write(1, 0, 1, "a"), read(2, 0, 5, "z")]);
    expect(verdict.result).toBe("illegal");
    expect(verdict.result === "illegal" && verdict.stuck.map((s) => s.index)).toEqual([1]);
  });

  test("a completed write is lost", () => {
    expect(check([write(1, 0, 1, "a"), read(2, 2, 3, null)]).result).toBe("illegal");
    expect(check([write(1, 0, 1, "a"), write(1, 2, 3, "b"), read(2, 4, 5, "b"), read(2, 6, 7, "a")]).result).toBe(
      "illegal",
    );
  });

  test("a compare-and-set succeeded twice on the same old value", () => {
    const history = [write(1, 0, 1, "0"), cas(2, 2, 6, "0", "x", true), cas(3, 2, 6, "0", "y", true)];
    const verdict = check(history);
    expect(verdict.result).toBe("illegal");
    expect(verdict.result === "illegal" && verdict.explanation).toContain(`cas "0"→"y" → true`);
  });

  test("a compare-and-set of unknown outcome still cannot swap from a value the register no longer holds", () => {
    const history = [write(1, 0, 1, "0"), write(1, 2, 3, "1"), cas(2, 4, NEVER, "0", "x", true), read(3, 10, 11, "x")];
    expect(check(history).result).toBe("illegal");
  });
});

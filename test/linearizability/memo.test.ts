import { describe, expect, test } from "bun:test";
import { LinearizedSet, Memo } from "./memo.ts";

const set = (size: number, known: number[], unknown: number[]) => {
  const s = new LinearizedSet(size);
  for (const op of known) s.toggle(op, false);
  for (const op of unknown) s.toggle(op, true);
  return s;
};
const memo = () =>
  new Memo<string>(
    (a, b) => a === b,
    (s) => s.length,
  );

describe("Memo", () => {
  test("a configuration is entered once: same operations, however placed, and same state", () => {
    const m = memo();
    expect(m.add(set(70, [0, 40, 69], []), "x")).toBe(true);
    expect(m.add(set(70, [69, 0, 40], []), "x")).toBe(false);
    expect(m.add(set(70, [0, 40, 69], []), "y")).toBe(true);
    expect(m.add(set(70, [0, 40], []), "x")).toBe(true);
    expect(m.add(set(70, [0, 40, 68], []), "x")).toBe(true);
    expect(m.size).toBe(4);
  });

  test("extra unknown operations add nothing to a configuration entered without them, not the reverse", () => {
    const m = memo();
    expect(m.add(set(70, [1], [50]), "x")).toBe(true);
    expect(m.add(set(70, [1], [50, 60]), "x")).toBe(false);
    expect(m.add(set(70, [1], []), "x")).toBe(true);
    expect(m.add(set(70, [1], [60]), "x")).toBe(false);
    // Known operations are never taken as optional.
    expect(m.add(set(70, [1, 2], [50]), "x")).toBe(true);
  });
});

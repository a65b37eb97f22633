import { describe, expect, test } from "bun:test";
import { checkLinearizability } from "./checker.ts";
import type { Operation } from "./history.ts";
import { type KvInput, type KvOutput, kvModel } from "./kv-model.ts";

type Op = Operation<KvInput, KvOutput>;
const NEVER = Number.POSITIVE_INFINITY;
const put = (client: number, call: number, ret: number, records: Record<string, string>): Op => ({
  client,
  input: { op: "put", records: Object.entries(records).map(([key, value]) => ({ key, value })) },
  call,
  ret,
});
const get = (client: number, call: number, ret: number, seen: Record<string, string | null>): Op => ({
  client,
  input: { op: "get", keys: Object.keys(seen) },
  output: { values: Object.values(seen) },
  call,
  ret,
});
const check = (history: Op[]) => checkLinearizability(history, kvModel, { timeoutMs: 5_000 });

describe("the key-value model", () => {
  test("single-key operations are checked one key at a time; a multi-key one joins its keys", () => {
    const history = [
      put(1, 0, 1, { a: "1" }),
      put(2, 0, 1, { b: "1" }),
      put(3, 0, 1, { c: "1" }),
      get(1, 2, 3, { a: "1" }),
    ];
    expect(kvModel.partition!(history).map((p) => [p.label, p.operations.length])).toEqual([
      [`key "a"`, 2],
      [`key "b"`, 1],
      [`key "c"`, 1],
    ]);
    const joined = [...history, get(2, 2, 3, { b: "1", c: "1" })];
    expect(kvModel.partition!(joined).map((p) => [p.label, p.operations.length])).toEqual([
      [`key "a"`, 2],
      [`keys "b", "c"`, 3],
    ]);
    expect(check(joined)).toMatchObject({ result: "ok", partitions: 2 });
  });

  test("a stale read names the key whose history is not linearizable", () => {
    const history = [
      put(1, 0, 1, { a: "1" }),
      put(1, 2, 3, { b: "1" }),
      get(2, 4, 5, { b: null }),
      get(2, 6, 7, { a: "1" }),
    ];
    const verdict = check(history);
    expect(verdict).toMatchObject({ result: "illegal", partition: `key "b"` });
    expect(verdict.result === "illegal" && verdict.explanation).toContain(`#2 client 2 [4, 5] get "b" → (none)`);
  });

  test("a multi-key batch seen half-applied", () => {
    const batch = put(1, 0, 10, { a: "1", b: "1" });
    // Concurrent with the batch, a reader may see none of it or all of it...
    expect(check([batch, get(2, 1, 2, { a: null, b: null })]).result).toBe("ok");
    expect(check([batch, get(2, 1, 2, { a: "1", b: "1" })]).result).toBe("ok");
    // ...but not a part, in one read or in two reads one after the other.
    expect(check([batch, get(2, 1, 2, { a: "1", b: null })]).result).toBe("illegal");
    expect(check([batch, get(2, 1, 2, { a: "1" }), get(2, 3, 4, { b: null })]).result).toBe("illegal");
  });

  test("states are equal and hash alike whatever order their keys were written in", () => {
    const ab = new Map([
      ["a", "1"],
      ["b", "2"],
    ]);
    const ba = new Map([
      ["b", "2"],
      ["a", "1"],
    ]);
    expect(kvModel.equal(ab, ba)).toBe(true);
    expect(kvModel.hash(ab)).toBe(kvModel.hash(ba));
    expect(kvModel.equal(ab, new Map([...ab, ["b", "3"]]))).toBe(false);
    expect(kvModel.equal(ab, new Map([["a", "1"]]))).toBe(false);
  });

  test("delete: the count it answers is checked, and a deleted key stays gone", () => {
    const history: Op[] = [
      put(1, 0, 1, { a: "1" }),
      { client: 2, input: { op: "delete", keys: ["a", "b"] }, output: { deleted: 1 }, call: 2, ret: 3 },
      get(3, 4, 5, { a: null }),
    ];
    expect(check(history).result).toBe("ok");
    expect(check([...history, get(3, 6, 7, { a: "1" })]).result).toBe("illegal");
    const wrongCount: Op = { ...history[1]!, output: { deleted: 2 } };
    expect(check([history[0]!, wrongCount]).result).toBe("illegal");
  });

  test("txn: a compare on one key picks the branch, and its gets read its own writes", () => {
    const txn = (client: number, call: number, ret: number, output: KvOutput): Op => ({
      client,
      input: {
        op: "txn",
        compares: [{ key: "lock", value: null }],
        success: [
          { type: "put", key: "lock", value: String(client) },
          { type: "get", key: "lock" },
        ],
        failure: [{ type: "get", key: "lock" }],
      },
      output,
      call,
      ret,
    });
    const winner = txn(1, 0, 5, { succeeded: true, values: ["1"] });
    expect(check([winner, txn(2, 0, 5, { succeeded: false, values: ["1"] })]).result).toBe("ok");
    // Both taking the lock, or a loser reading a lock nobody took, is not possible.
    expect(check([winner, txn(2, 0, 5, { succeeded: true, values: ["2"] })]).result).toBe("illegal");
    expect(check([winner, txn(2, 0, 5, { succeeded: false, values: ["2"] })]).result).toBe("illegal");
    // Every compare must hold: with the lock free but the second compare false, the else branch runs.
    const both: Op = {
      client: 4,
      input: {
        op: "txn",
        compares: [
          { key: "lock", value: null },
          { key: "owner", value: "4" },
        ],
        success: [{ type: "put", key: "lock", value: "4" }],
        failure: [{ type: "get", key: "lock" }],
      },
      output: { succeeded: false, values: [null] },
      call: 0,
      ret: 5,
    };
    expect(check([both]).result).toBe("ok");
    expect(check([{ ...both, output: { succeeded: true, values: [] } }]).result).toBe("illegal");
    // A txn whose answer was lost may have taken the lock: a later reader can see it taken, or free.
    const lost = { ...txn(2, 0, NEVER, {}), output: undefined };
    expect(check([lost, get(3, 6, 7, { lock: "2" })]).result).toBe("ok");
    expect(check([lost, get(3, 6, 7, { lock: null })]).result).toBe("ok");
  });
});

import { describe, expect, test } from "bun:test";
import { deltaFor, isNewer } from "../../../src/cluster/gossip/exchange.ts";
import { NodeState } from "../../../src/cluster/gossip/node-state.ts";

/** The owner's writes of the worked example in node-state.ts. */
function example(): NodeState {
  const state = new NodeState("a", 1);
  state.set("grpc", "a:1");
  state.set("gossip", "a:2");
  state.set("status", "alive");
  state.set("hb", "1");
  state.set("hb", "2");
  return state;
}

describe("NodeState (scuttlebutt)", () => {
  test("the worked example: the newest entry per key, max version 5, and what lies above version 2", () => {
    const state = example();
    expect(state.maxVersion).toBe(5);
    expect(state.heartbeat).toBe(2);
    expect(state.entriesAbove(0).map((e) => `${e.key}@${e.version}`)).toEqual([
      "grpc@1",
      "gossip@2",
      "status@3",
      "hb@5",
    ]);
    expect(state.entriesAbove(2).map((e) => `${e.key}@${e.version}`)).toEqual(["status@3", "hb@5"]);
    expect(state.entriesAbove(5)).toEqual([]);
    expect(state.digest()).toEqual({ nodeId: "a", generation: 1, maxVersion: 5 });
  });

  test("a peer that applies every prefix of a delta in turn ends up with the owner's state", () => {
    const owner = example();
    const all = owner.entriesAbove(0);
    for (let cut = 1; cut <= all.length; cut++) {
      const copy = new NodeState("a", 1);
      copy.apply(0, all.slice(0, cut));
      expect(copy.maxVersion).toBe(all[cut - 1]!.version);
      copy.apply(copy.maxVersion, owner.entriesAbove(copy.maxVersion));
      expect(copy.entriesAbove(0)).toEqual(owner.entriesAbove(0));
      expect(copy.maxVersion).toBe(5);
    }
  });

  test("apply: older or repeated entries change nothing; it says when the heartbeat advanced", () => {
    const copy = new NodeState("a", 1);
    expect(copy.apply(0, example().entriesAbove(0))).toBe(true);
    expect(copy.apply(0, example().entriesAbove(0))).toBe(false);
    expect(copy.apply(3, [{ key: "hb", value: "1", version: 4 }])).toBe(false);
    expect(copy.heartbeat).toBe(2);
    expect(copy.apply(5, [{ key: "hb", value: "3", version: 6 }])).toBe(true);
    expect(copy.heartbeat).toBe(3);
  });

  test("apply with a gap is a broken invariant (the caller must check first)", () => {
    expect(() => new NodeState("a", 1).apply(3, [{ key: "hb", value: "1", version: 4 }])).toThrow(/gap/);
  });

  test("deltaFor and isNewer: what one side sends the other, generations first", () => {
    const state = example();
    expect(deltaFor(state, undefined)?.fromVersion).toBe(0);
    expect(deltaFor(state, { nodeId: "a", generation: 1, maxVersion: 2 })?.entries.map((e) => e.key)).toEqual([
      "status",
      "hb",
    ]);
    expect(deltaFor(state, { nodeId: "a", generation: 1, maxVersion: 5 })).toBeUndefined();
    expect(deltaFor(state, { nodeId: "a", generation: 0, maxVersion: 0 })?.entries).toHaveLength(4);
    // The peer holds an older generation at a higher version: it still gets everything.
    expect(deltaFor(state, { nodeId: "a", generation: 0, maxVersion: 0 })?.fromVersion).toBe(0);
    expect(deltaFor(new NodeState("a", 1), { nodeId: "a", generation: 0, maxVersion: 0 })).toBeUndefined();
    expect(deltaFor(state, { nodeId: "a", generation: 2, maxVersion: 1 })).toBeUndefined();
    expect(isNewer({ nodeId: "a", generation: 2, maxVersion: 1 }, state)).toBe(true);
    expect(isNewer({ nodeId: "a", generation: 1, maxVersion: 6 }, state)).toBe(true);
    expect(isNewer({ nodeId: "a", generation: 1, maxVersion: 5 }, state)).toBe(false);
    expect(isNewer({ nodeId: "a", generation: 0, maxVersion: 0 }, undefined)).toBe(true);
  });

  test("the owner's limits: key names, value size, well-formed text, key count", () => {
    const state = new NodeState("a", 1);
    expect(() => state.set("Zone", "x")).toThrow(/invalid state key/);
    expect(() => state.set("zone", "x".repeat(256))).toThrow(/over 255 bytes/);
    expect(() => state.set("zone", "\ud800")).toThrow(/well-formed/);
    for (let i = 0; i < 32; i++) state.set(`k${i}`, "v");
    expect(() => state.set("k32", "v")).toThrow(/more than 32 keys/);
    state.set("k0", "overwriting is fine");
    expect(() => new NodeState("a b", 1)).toThrow(/invalid node id/);
    expect(() => new NodeState("a", 0)).toThrow(/generation/);
  });
});

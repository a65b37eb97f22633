import { expect, test } from "bun:test";
import fc from "fast-check";
import {
  decodeMetaCommand,
  decodeMetaState,
  encodeMetaCommand,
  encodeMetaState,
} from "../../../src/cluster/meta/meta-format.ts";
import { type MetaCommand, MetaState } from "../../../src/cluster/meta/meta-state.ts";
import { movedReplicas, shares } from "../../../src/cluster/ring/placement.ts";
import { FormatError } from "../../../src/io/format/bytes.ts";

const node = (name: string) => ({ name, peerAddress: `127.0.0.1:${20_000 + name.charCodeAt(1)}` });

/** Applies the leader's next placement, as the meta group's leader proposes it; says whether there was one. */
function placeNow(state: MetaState): boolean {
  const next = state.nextPlacement();
  if (next) expect(state.apply(next)).toEqual({ ok: true });
  return next !== undefined;
}

test("the worked example: create, three nodes, the first placement; a fourth node moves a quarter; a leave moves its share", () => {
  const state = new MetaState();
  expect(state.nextPlacement()).toBeUndefined(); // not created
  expect(state.apply({ type: "create", partitions: 16, replicas: 3 })).toEqual({ ok: true });
  expect(state.apply({ type: "create", partitions: 8, replicas: 3 })).toEqual({
    ok: false,
    reason: "the cluster was created already",
  });
  for (const name of ["n1", "n2", "n3"]) state.apply({ type: "putNode", node: node(name) });
  expect(placeNow(state)).toBe(true);
  expect(state.placementVersion).toBe(1);
  expect(placeNow(state)).toBe(false); // it fits
  for (const share of shares(state.placement, ["n1", "n2", "n3"]).values()) expect(share.replicas).toBe(16);

  const before = state.placement;
  state.apply({ type: "putNode", node: node("n4") });
  expect(placeNow(state)).toBe(true);
  expect(movedReplicas(before, state.placement)).toBe(12); // 48 replicas, a quarter to n4
  expect(shares(state.placement, ["n4"]).get("n4")!.replicas).toBe(12);

  const withFour = state.placement;
  expect(state.apply({ type: "removeNode", name: "n2" })).toEqual({ ok: true });
  expect(placeNow(state)).toBe(true);
  expect(state.placement.flat()).not.toContain("n2");
  expect(movedReplicas(withFour, state.placement)).toBe(12);
  expect(state.placementVersion).toBe(3);
  // The partitions' groups were founded on the first placement's replicas: it stays recorded.
  expect(state.founded).toBe(before);
});

test("refused, and nothing changed: a placement made from an older one, one that does not fit, the last node's removal", () => {
  const state = new MetaState();
  state.apply({ type: "create", partitions: 4, replicas: 2 });
  state.apply({ type: "putNode", node: node("n1") });
  const stale = state.nextPlacement()!;
  placeNow(state);
  const snapshot = encodeMetaState(state);
  expect(state.apply(stale)).toEqual({
    ok: false,
    reason: "a placement made from number 0; the current one is 1",
  });
  state.apply({ type: "putNode", node: node("n2") });
  const bad = (placement: string[][]) => state.apply({ type: "setPlacement", basedOn: 1, placement });
  expect(bad([["n1"]])).toEqual({ ok: false, reason: "a placement of 1 partitions for a cluster of 4" });
  expect(bad([["n1", "n2"], ["n1", "n2"], ["n1", "n2"], ["n1"]])).toEqual({
    ok: false,
    reason: "partition 3 has 1 replicas, not 2",
  });
  expect(
    bad([
      ["n1", "n2"],
      ["n1", "n1"],
      ["n1", "n2"],
      ["n1", "n2"],
    ]),
  ).toEqual({
    ok: false,
    reason: "partition 1 names a node twice",
  });
  expect(
    bad([
      ["n1", "n2"],
      ["n1", "n2"],
      ["n1", "n9"],
      ["n1", "n2"],
    ]),
  ).toEqual({
    ok: false,
    reason: "partition 2 is placed on n9, which is no node of the cluster",
  });
  expect(state.apply({ type: "removeNode", name: "n9" })).toEqual({
    ok: false,
    reason: "n9 is not a node of the cluster",
  });
  state.apply({ type: "removeNode", name: "n2" });
  expect(state.apply({ type: "removeNode", name: "n1" })).toEqual({
    ok: false,
    reason: "n1 is the cluster's last node",
  });
  // n2, put and removed, is remembered as removed; nothing else changed.
  expect([...state.removed]).toEqual(["n2"]);
  state.removed.clear();
  expect(encodeMetaState(state)).toEqual(snapshot);
});

test("the reserved timestamp limit only grows", () => {
  const state = new MetaState();
  state.apply({ type: "reserveTimestamps", through: 1_000 });
  state.apply({ type: "reserveTimestamps", through: 500 });
  expect(state.timestampLimit).toBe(1_000);
});

const name = fc.constantFrom("n1", "n2", "n3", "n4", "n5", "n6", "a-much-longer-node-name");
const command: fc.Arbitrary<MetaCommand | "place"> = fc.oneof(
  fc.record({
    type: fc.constant("create" as const),
    partitions: fc.integer({ min: 1, max: 24 }),
    replicas: fc.integer({ min: 1, max: 4 }),
  }),
  fc.record({ type: fc.constant("putNode" as const), node: name.map(node) }),
  fc.record({ type: fc.constant("removeNode" as const), name }),
  fc.record({ type: fc.constant("reserveTimestamps" as const), through: fc.nat(2 ** 40) }),
  fc.constant("place" as const),
);

test("property: every command and state reads back as written; a history applied to decoded commands, or resumed from a decoded snapshot, ends in the same state", () => {
  fc.assert(
    fc.property(fc.array(command, { minLength: 1, maxLength: 60 }), fc.nat(59), (history, cut) => {
      const direct = new MetaState();
      const viaBytes = new MetaState();
      let resumed = new MetaState();
      for (const [i, step] of history.entries()) {
        const next = step === "place" ? direct.nextPlacement() : step;
        if (next !== undefined) {
          const decoded = decodeMetaCommand(encodeMetaCommand(next));
          expect(decoded).toEqual(next);
          const outcome = direct.apply(next);
          expect(viaBytes.apply(decoded)).toEqual(outcome);
          if (i > cut) resumed.apply(decoded);
        }
        if (i === cut) resumed = decodeMetaState(encodeMetaState(direct));
      }
      const bytes = encodeMetaState(direct);
      expect(encodeMetaState(viaBytes)).toEqual(bytes);
      expect(decodeMetaState(bytes)).toEqual(direct);
      if (cut < history.length) expect(encodeMetaState(resumed)).toEqual(bytes);
    }),
    { numRuns: 300 },
  );
});

test("damaged bytes are a FormatError naming what is wrong, never a huge allocation", () => {
  const state = new MetaState();
  state.apply({ type: "create", partitions: 4, replicas: 2 });
  for (const n of ["n1", "n2"]) state.apply({ type: "putNode", node: node(n) });
  placeNow(state);
  const bytes = encodeMetaState(state);
  expect(() => decodeMetaState(bytes.subarray(0, bytes.length - 1))).toThrow(FormatError);
  expect(() => decodeMetaState(Uint8Array.of(...bytes, 0))).toThrow("1 bytes left after a meta state");
  expect(() => decodeMetaState(Uint8Array.of(1, ...bytes.subarray(1)))).toThrow(
    "meta state of version 1 (this node reads 3)",
  );
  // A placement whose table claims 2^30 names, and a command of an unknown type.
  expect(() => decodeMetaCommand(Uint8Array.of(1, 4, 0, 0x80, 0x80, 0x80, 0x80, 0x04))).toThrow(
    /1073741824 node names at byte 3/,
  );
  expect(() => decodeMetaCommand(Uint8Array.of(1, 9))).toThrow("unknown meta command type at byte 1");
  expect(() => decodeMetaCommand(Uint8Array.of(1, 1, 0, 3))).toThrow("a cluster of 0 partitions × 3 replicas");
  fc.assert(
    fc.property(fc.nat(bytes.length - 1), fc.integer({ min: 1, max: 255 }), (at, flip) => {
      const damaged = bytes.slice();
      damaged[at]! ^= flip;
      try {
        decodeMetaState(damaged);
      } catch (error) {
        expect(error).toBeInstanceOf(FormatError);
      }
    }),
  );
});

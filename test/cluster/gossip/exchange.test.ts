import { describe, expect, test } from "bun:test";
import { deltaBytes, digestBytes } from "../../../src/cluster/gossip/codec.ts";
import { answerRequests, answerSyn, packDeltas, synDigests } from "../../../src/cluster/gossip/exchange.ts";
import type { Delta, Syn } from "../../../src/cluster/gossip/messages.ts";
import { NodeState } from "../../../src/cluster/gossip/node-state.ts";
import { chooseTargets } from "../../../src/cluster/gossip/peer-selection.ts";
import { PeerTable } from "../../../src/cluster/gossip/peer-table.ts";
import { mulberry32 } from "../../../src/random.ts";

const DETECTOR = {
  threshold: 8,
  windowSamplesMax: 10,
  stdDevFloorMs: 100,
  acceptablePauseMs: 0,
  bootstrapIntervalMs: 500,
};

/** A table for `self` that knows `peers`, each with a grpc address and a heartbeat (versions 1 and 2). */
function tableOf(self: string, peers: readonly string[]): PeerTable {
  const state = new NodeState(self, 1);
  state.set("hb", "1");
  const table = new PeerTable(state, { detector: DETECTOR, nodesMax: 1000, forgetAfterMs: 60_000 });
  for (const id of peers) expect(table.apply(fullDelta(id), 0)).toBeUndefined();
  return table;
}

function fullDelta(id: string, generation = 1): Delta {
  return {
    nodeId: id,
    generation,
    fromVersion: 0,
    entries: [
      { key: "grpc", value: `${id}:20001`, version: 1 },
      { key: "hb", value: "1", version: 2 },
    ],
  };
}

const ids = (n: number) => Array.from({ length: n }, (_, i) => `n${String(i).padStart(2, "0")}`);

describe("Syn digests", () => {
  test("all fit: complete, the sender's own first", () => {
    const syn = synDigests(tableOf("me", ids(5)), mulberry32(1), 1000);
    expect(syn.complete).toBe(true);
    expect(syn.digests[0]!.nodeId).toBe("me");
    expect(new Set(syn.digests.map((d) => d.nodeId))).toEqual(new Set(["me", ...ids(5)]));
  });

  test("not all fit: a circular run in id order from a random start, within the budget", () => {
    const table = tableOf("me", ids(40));
    const budget = 10 * digestBytes({ nodeId: "n00", generation: 1, maxVersion: 2 });
    const starts = new Set<string>();
    const random = mulberry32(2);
    for (let i = 0; i < 50; i++) {
      const syn = synDigests(table, random, budget);
      expect(syn.complete).toBe(false);
      expect(syn.digests[0]!.nodeId).toBe("me");
      const run = syn.digests.slice(1).map((d) => d.nodeId);
      expect(run).toHaveLength(9);
      const others = table.sortedIds().filter((id) => id !== "me");
      const start = others.indexOf(run[0]!);
      expect(run).toEqual(run.map((_, k) => others[(start + k) % others.length]!));
      starts.add(run[0]!);
    }
    expect(starts.size).toBeGreaterThan(20);
  });
});

describe("answering a Syn", () => {
  const synFrom = (sender: string, listed: readonly string[], complete: boolean): Syn => ({
    kind: "syn",
    clusterId: "c",
    senderId: sender,
    complete,
    digests: [
      { nodeId: sender, generation: 1, maxVersion: 2 },
      ...listed.map((id) => ({ nodeId: id, generation: 1, maxVersion: 2 })),
    ],
  });

  test("a partial run: nodes inside the run the sender did not list are sent whole, nodes outside it are not", () => {
    const b = tableOf("b", ["a", "n10", "n20", "n30", "n40", "n50"]);
    // The run goes n20..n40 and lists only n20 and n40: n30 is unknown to a; n10 and n50 may be known.
    const answer = answerSyn(b, synFrom("a", ["n20", "n40"], false), mulberry32(1), 1200);
    expect(answer.deltas.map((d) => d.nodeId).sort()).toEqual(["b", "n30"]);
    expect(answer.deltas.every((d) => d.fromVersion === 0)).toBe(true);
  });

  test("a run that wraps around the end of the id order", () => {
    const b = tableOf("b", ["a", "n10", "n20", "n30", "n40", "n50"]);
    const answer = answerSyn(b, synFrom("a", ["n40", "n10"], false), mulberry32(1), 1200);
    expect(answer.deltas.map((d) => d.nodeId).sort()).toEqual(["b", "n50"]);
  });

  test("a complete Syn: every node not listed is sent; newer digests become requests", () => {
    const b = tableOf("b", ["a", "n10", "n20"]);
    const syn = synFrom("a", ["b", "n10"], true);
    syn.digests[2] = { nodeId: "n10", generation: 1, maxVersion: 9 };
    syn.digests.push({ nodeId: "n99", generation: 4, maxVersion: 3 });
    const answer = answerSyn(b, syn, mulberry32(1), 1200);
    expect(answer.deltas.map((d) => d.nodeId)).toEqual(["n20"]);
    expect(answer.requests).toEqual([
      { nodeId: "n10", generation: 1, maxVersion: 2 },
      { nodeId: "n99", generation: 0, maxVersion: 0 },
    ]);
    // And the sender answers those requests from its own table.
    const a = tableOf("a", ["b", "n99"]);
    expect(answerRequests(a, answer.requests, 1200).map((d) => [d.nodeId, d.fromVersion])).toEqual([["n99", 0]]);
  });

  test("requests take at most half the budget when there are deltas to send", () => {
    const b = tableOf("b", ["a"]);
    const unknown = ids(60);
    const answer = answerSyn(b, synFrom("a", unknown, true), mulberry32(1), 400);
    const requestBytes = answer.requests.reduce((sum, d) => sum + digestBytes(d), 0);
    expect(requestBytes).toBeLessThanOrEqual(200);
    expect(answer.deltas.map((d) => d.nodeId)).toEqual(["b"]);
  });
});

describe("packDeltas", () => {
  test("whole deltas while they fit, then a prefix of the one that does not, never over the budget", () => {
    const deltas = ["x", "y", "z"].map((id) => fullDelta(id));
    const whole = deltaBytes(deltas[0]!);
    const packed = packDeltas(deltas, whole * 3 - 1);
    expect(packed.map((d) => [d.nodeId, d.entries.length])).toEqual([
      ["x", 2],
      ["y", 2],
      ["z", 1],
    ]);
    expect(packed.reduce((sum, d) => sum + deltaBytes(d), 0)).toBeLessThanOrEqual(whole * 3 - 1);
    expect(packDeltas(deltas, 5)).toEqual([]);
  });
});

describe("chooseTargets", () => {
  const live = ids(10).map((id) => `${id}:1`);

  test("fanout distinct live peers; no seed or dead peer is needed then most of the time", () => {
    const random = mulberry32(3);
    for (let i = 0; i < 100; i++) {
      const targets = chooseTargets({ live, dead: [], seeds: [] }, 3, random);
      expect(targets).toHaveLength(3);
      expect(new Set(targets).size).toBe(3);
      for (const target of targets) expect(live).toContain(target);
    }
  });

  test("with no live peer, always a seed: that is how a node joins", () => {
    const random = mulberry32(4);
    for (let i = 0; i < 20; i++)
      expect(chooseTargets({ live: [], dead: [], seeds: ["s1:1", "s2:1"] }, 3, random)).toHaveLength(1);
  });

  test("a dead peer with probability dead / (live + 1), a seed with seeds / (live + dead + 1)", () => {
    const random = mulberry32(5);
    const dead = ["d1:1", "d2:1", "d3:1", "d4:1", "d5:1"];
    const seeds = ["s1:1", "s2:1"];
    let deadPicked = 0;
    let seedPicked = 0;
    const runs = 20_000;
    for (let i = 0; i < runs; i++) {
      const targets = chooseTargets({ live, dead, seeds }, 3, random);
      if (targets.some((t) => dead.includes(t))) deadPicked++;
      if (targets.some((t) => seeds.includes(t))) seedPicked++;
    }
    expect(deadPicked / runs).toBeCloseTo(5 / 11, 1);
    expect(seedPicked / runs).toBeCloseTo(2 / 16, 1);
  });
});

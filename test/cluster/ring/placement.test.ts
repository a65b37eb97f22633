import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { movedReplicas, type Placement, place, shares } from "../../../src/cluster/ring/placement.ts";

const names = (count: number, from = 1) => Array.from({ length: count }, (_, index) => `n${index + from}`);
const show = (placement: Placement) => placement.map((holders) => holders.join(" "));

/** Every property a placement must have for its nodes, whatever came before it. */
function expectFits(placement: Placement, nodes: readonly string[], partitions: number, replicas: number): void {
  const width = Math.min(replicas, nodes.length);
  expect(placement).toHaveLength(partitions);
  for (const holders of placement) {
    expect(new Set(holders).size).toBe(width);
    for (const node of holders) expect(nodes).toContain(node);
  }
  const counts = [...shares(placement, nodes).values()];
  const mean = (partitions * width) / nodes.length;
  for (const { replicas: held } of counts) {
    expect(held).toBeGreaterThanOrEqual(Math.floor(mean));
    expect(held).toBeLessThanOrEqual(Math.ceil(mean));
  }
  const leaders = counts.map((count) => count.leaders);
  expect(Math.max(...leaders) - Math.min(...leaders)).toBeLessThanOrEqual(1);
}

describe("place", () => {
  test("the worked example of the doc comment: d joins and takes one replica from b and one from c", () => {
    const shape = { partitions: 4, replicas: 2 };
    const first = place(undefined, ["a", "b", "c"], shape);
    expect(show(first)).toEqual(["c a", "b c", "a b", "c b"]);
    const second = place(first, ["a", "b", "c", "d"], shape);
    expect(show(second)).toEqual(["a c", "b d", "d a", "c b"]);
    expect(movedReplicas(first, second)).toBe(2);
  });

  test("64 partitions, 3 replicas, 3–12 nodes: shares within ±10% of the mean, a join within 1.2× of 1/N, a leave within 1.05×", () => {
    const shape = { partitions: 64, replicas: 3 };
    let nodes = names(3);
    let placement = place(undefined, nodes, shape);
    for (let count = 4; count <= 12; count += 1) {
      const joined = [...nodes, `n${count}`];
      const next = place(placement, joined, shape);
      const total = 64 * 3;
      expect(movedReplicas(placement, next) / total).toBeLessThanOrEqual(1.2 / count);
      const mean = total / count;
      for (const { replicas } of shares(next, joined).values())
        expect(Math.abs(replicas - mean)).toBeLessThanOrEqual(mean * 0.1);
      // The issue asks 1.2×; the documented figures are at most 1.04×. Filling the holes with the
      // fewest choices first is what keeps a leave from needing swaps (1.08× at 9 nodes without).
      const left = joined.filter((node) => node !== "n2");
      expect(movedReplicas(next, place(next, left, shape)) / total).toBeLessThanOrEqual(1.05 / count);
      nodes = joined;
      placement = next;
    }
  });

  test("fewer nodes than replicas: every node holds every partition, and the next joins fill the width", () => {
    const shape = { partitions: 8, replicas: 3 };
    const two = place(undefined, ["a", "b"], shape);
    expectFits(two, ["a", "b"], 8, 3);
    const three = place(two, ["a", "b", "c"], shape);
    expectFits(three, ["a", "b", "c"], 8, 3);
    expect(movedReplicas(two, three)).toBe(8);
    const back = place(three, ["a", "c"], shape);
    expectFits(back, ["a", "c"], 8, 3);
    expect(movedReplicas(three, back)).toBe(0);
  });

  test("4096 partitions × 3 replicas on 50 nodes: created, then a join and a leave, in well under a second each", () => {
    // Each step used to scan every partition for every replica it placed (and copy leader lists per
    // search): 23 s to create this cluster, quadratic in P. The bound leaves room for a busy machine.
    const shape = { partitions: 4096, replicas: 3 };
    const started = performance.now();
    const created = place(undefined, names(50), shape);
    const joined = place(created, names(51), shape);
    const left = place(joined, names(51).slice(1), shape);
    const seconds = (performance.now() - started) / 1000;
    expectFits(left, names(51).slice(1), 4096, 3);
    expect(seconds).toBeLessThan(5);
  }, 60_000);

  test("bad shapes and an empty membership are refused, naming the problem", () => {
    expect(() => place(undefined, ["a"], { partitions: 0, replicas: 3 })).toThrow(/partitions must be an integer/);
    expect(() => place(undefined, ["a"], { partitions: 70_000, replicas: 3 })).toThrow(/partitions must be/);
    expect(() => place(undefined, ["a"], { partitions: 4, replicas: 0 })).toThrow(/replicas must be an integer/);
    expect(() => place(undefined, [], { partitions: 4, replicas: 3 })).toThrow(/at least one node/);
    const four = place(undefined, ["a"], { partitions: 4, replicas: 1 });
    expect(() => place(four, ["a"], { partitions: 8, replicas: 1 })).toThrow(/fixed at creation/);
  });
});

/** A membership history: start with some nodes, then joins of new ones and leaves of present ones. */
const histories = fc.record({
  partitions: fc.integer({ min: 1, max: 96 }),
  replicas: fc.integer({ min: 1, max: 5 }),
  initial: fc.integer({ min: 1, max: 7 }),
  steps: fc.array(fc.oneof(fc.constant("join" as const), fc.nat({ max: 20 })), { maxLength: 8 }),
});

describe("place, over random membership histories (fast-check)", () => {
  test("every placement fits: full width on distinct nodes, shares and leaders even, nothing moves twice", () => {
    fc.assert(
      fc.property(histories, ({ partitions, replicas, initial, steps }) => {
        const shape = { partitions, replicas };
        let nodes = names(initial);
        let next = initial + 1;
        let placement = place(undefined, nodes, shape);
        expectFits(placement, nodes, partitions, replicas);
        for (const step of steps) {
          const before = nodes;
          if (step === "join") nodes = [...nodes, `n${next++}`];
          else if (nodes.length > 1) nodes = nodes.filter((_, index) => index !== step % nodes.length);
          const after = place(placement, nodes, shape);
          expectFits(after, nodes, partitions, replicas);
          // A join moves the new node's share and no more; a leave at most a little more than the leaver's.
          const width = Math.min(replicas, nodes.length);
          const added = nodes.find((node) => !before.includes(node));
          const newcomer = added === undefined ? 0 : (shares(after, nodes).get(added)?.replicas ?? 0);
          const widened = partitions * (width - Math.min(replicas, before.length));
          const moved = movedReplicas(placement, after);
          if (added !== undefined) expect(moved).toBe(Math.max(newcomer, widened));
          const leaver = before.find((node) => !nodes.includes(node));
          if (leaver !== undefined) {
            const share = (shares(placement, before).get(leaver)?.replicas ?? 0) + widened;
            expect(moved).toBeLessThanOrEqual(1.2 * share + 1);
          }
          // Stable: placing again for the same nodes changes nothing.
          expect(place(after, nodes, shape)).toEqual(after);
          placement = after;
        }
      }),
      { numRuns: Number(process.env.PLACEMENT_RUNS ?? 300) },
    );
  });

  test("the order nodes are named in does not matter", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 64 }),
        fc.integer({ min: 1, max: 4 }),
        fc.shuffledSubarray(names(9), { minLength: 1 }),
        (partitions, replicas, nodes) => {
          const shape = { partitions, replicas };
          expect(place(undefined, nodes, shape)).toEqual(place(undefined, [...nodes].sort(), shape));
        },
      ),
      { numRuns: 100 },
    );
  });
});

test("scripts/placement-figures.ts prints a row per node count with the moved fractions (smoke run)", () => {
  const run = Bun.spawnSync([process.execPath, "scripts/placement-figures.ts", "--partitions", "16", "--nodes", "6"], {
    cwd: `${import.meta.dir}/../../..`,
  });
  expect(run.stderr.toString()).toBe("");
  const rows = run.stdout.toString().match(/^\| \d+ \| \d+–\d+ \(±[\d.]+%\) \| \d+–\d+ \| [\d.]+ \| [\d.]+ \|$/gm);
  expect(rows).toHaveLength(3);
});

import { describe, expect, test } from "bun:test";
import { GOSSIP_DEFAULTS } from "../../../src/cluster/gossip/index.ts";
import { forEachSeed, nodeId, ROUGH_NETWORK, Simulation, summary } from "./simulator.ts";

/**
 * Epidemic dissemination reaches N nodes in O(log N) rounds. The bound asserted, log2 N + 4 rounds,
 * holds with room to spare at 3, 10 and 100 nodes on a network that loses 5%, delays 1–100 ms and
 * duplicates 1%; the figures measured are printed for the README.
 */
const roundsBound = (nodes: number) => Math.log2(nodes) + 4;

const SCALES = [
  { nodes: 3, seeds: 24 },
  { nodes: 10, seeds: 24 },
  { nodes: 100, seeds: 3 },
];

describe("convergence (simulated, 5% loss, 1–100 ms delays)", () => {
  for (const { nodes, seeds } of SCALES) {
    test(`${nodes} nodes that know only the seeds converge to the truth within log2 N + 4 rounds; one change then spreads as fast`, () => {
      const coldRounds: number[] = [];
      const spreadRounds: number[] = [];
      forEachSeed(`cold start of ${nodes} nodes`, seeds, (seed) => {
        const sim = new Simulation({ seed, nodes, network: ROUGH_NETWORK });
        const limitMs = roundsBound(nodes) * sim.intervalMs;
        const convergedMs = sim.converge(limitMs);
        coldRounds.push(convergedMs / sim.intervalMs);

        sim.runUntilMs(sim.nowMs + 2_000);
        const changed = nodeId(nodes - 1);
        sim.gossiper(changed).setMetadata("zone", "attic");
        const sees = (observer: string) =>
          sim.view(observer).find((m) => m.nodeId === changed)?.metadata.zone === "attic";
        const startMs = sim.nowMs;
        const spreadAt = sim.runUntil(() => sim.upIds().every(sees), limitMs, 25);
        expect(spreadAt, `the change reached ${sim.upIds().filter(sees).length} of ${nodes} nodes`).toBeDefined();
        spreadRounds.push((spreadAt! - startMs) / sim.intervalMs);
        // Nothing goes over the datagram limit; at 100 nodes the state does not fit one and is split.
        expect(sim.largestDatagramBytes).toBeLessThanOrEqual(GOSSIP_DEFAULTS.datagramBytesMax);
        if (nodes === 100) expect(sim.largestDatagramBytes).toBeGreaterThan(GOSSIP_DEFAULTS.datagramBytesMax - 100);
      });
      console.log(
        `gossip, ${nodes} nodes: cold start converged in ${summary(coldRounds, "rounds")}; one change reached all in ${summary(spreadRounds, "rounds")}`,
      );
    }, 60_000);
  }
});

test("one seed replays exactly: the same run, datagram for datagram and phi for phi; another seed differs", () => {
  const trace = (seed: number) => {
    const sim = new Simulation({ seed, nodes: 10, network: ROUGH_NETWORK });
    sim.runUntilMs(3_000);
    sim.crash(nodeId(4));
    sim.runUntilMs(6_000);
    return JSON.stringify({ delivered: sim.delivered, lost: sim.lost, views: sim.upIds().map((id) => sim.view(id)) });
  };
  expect(trace(7)).toBe(trace(7));
  expect(trace(7)).not.toBe(trace(8));
});

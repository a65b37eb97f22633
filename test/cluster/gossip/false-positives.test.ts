import { expect, test } from "bun:test";
import { GOSSIP_DEFAULTS } from "../../../src/cluster/gossip/index.ts";
import { forEachSeed, ROUGH_NETWORK, Simulation } from "./simulator.ts";

const HOUR_MS = 60 * 60 * 1_000;

/**
 * The other half of a failure detector's contract: no false alarms. Ten nodes at the defaults
 * (interval 500 ms, phi threshold 8) on a network that loses 5% of datagrams, delays them 1–100 ms
 * and duplicates 1%, for a simulated hour; before every event a node handles — a tick or a datagram,
 * the only moments its view can be read — no peer may be dead in its view. phi only grows between
 * two heartbeats, so checking right before each arrival catches every peak.
 *
 * An hour is ~650,000 datagrams, several seconds of CPU: one seed by default, GOSSIP_SIM_SEEDS for more.
 */
test("10 nodes, 5% loss, jittered delays: no live node is ever seen dead over a simulated hour", () => {
  const maxPhis: number[] = [];
  forEachSeed("an hour of 5% loss", 1, (seed) => {
    const sim = new Simulation({ seed, nodes: 10, network: ROUGH_NETWORK });
    expect(sim.intervalMs).toBe(GOSSIP_DEFAULTS.intervalMs);
    let maxPhi = 0;
    // A peer is unknown to an observer until news of it first arrives; once known, never again.
    const known = new Set<string>();
    sim.runUntilMs(HOUR_MS, (observer, gossiper) => {
      for (const id of sim.ids) {
        const seen = gossiper.liveness(id, sim.nowMs);
        if (seen === undefined && !known.has(`${observer}>${id}`)) continue;
        known.add(`${observer}>${id}`);
        if (seen === undefined || seen.status === "dead" || seen.status === "left") {
          throw new Error(
            `at ${sim.nowMs.toFixed(0)} ms ${observer} sees ${id} as ${seen?.status ?? "unknown"} (phi ${seen?.phi.toFixed(2)})`,
          );
        }
        maxPhi = Math.max(maxPhi, seen.phi);
      }
    });
    expect(known.size).toBe(sim.ids.length * sim.ids.length);
    expect(sim.firstDivergence()).toBeUndefined();
    expect(sim.delivered).toBeGreaterThan(500_000);
    expect(sim.lost / (sim.lost + sim.delivered)).toBeCloseTo(0.05, 2);
    maxPhis.push(maxPhi);
  });
  const highest = Math.max(...maxPhis).toFixed(2);
  console.log(
    `gossip, 10 nodes, an hour at 5% loss: the highest phi of a live peer was ${highest} over ${maxPhis.length} seeds (threshold ${GOSSIP_DEFAULTS.phiThreshold})`,
  );
}, 120_000);

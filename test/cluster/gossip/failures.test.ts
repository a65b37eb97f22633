import { describe, expect, test } from "bun:test";
import { GOSSIP_DEFAULTS } from "../../../src/cluster/gossip/index.ts";
import { mulberry32 } from "../../../src/random.ts";
import { forEachSeed, nodeId, ROUGH_NETWORK, Simulation, summary } from "./simulator.ts";

const INTERVAL_MS = GOSSIP_DEFAULTS.intervalMs;
const roundsBoundMs = (nodes: number) => (Math.log2(nodes) + 4) * INTERVAL_MS;
/**
 * A crash is seen once the last heartbeat has stopped spreading and the silence outlasts mean +
 * acceptable pause + 5.6 σ. Both the spreading (a relayed heartbeat can come rounds late) and σ
 * (heartbeats of a peer arrive less regularly when they are relayed) grow with log N:
 * acceptable pause + (1.5 log2 N + 5) intervals — 5.2 s at 3 nodes, 6.5 s at 10, 9 s at 100.
 */
const deadBoundMs = (nodes: number) => GOSSIP_DEFAULTS.acceptablePauseMs + (1.5 * Math.log2(nodes) + 5) * INTERVAL_MS;
const SLOW_MS = 60_000;
const WARM_UP_MS = 5_000;
/** Dozens of seeds where a run is cheap; at 100 nodes a run costs seconds of CPU. */
const SCALES = [
  { nodes: 3, seeds: 24 },
  { nodes: 10, seeds: 24 },
  { nodes: 100, seeds: 2 },
];

/** A cluster of `nodes` on the rough network, converged and warmed up. */
function warmCluster(seed: number, nodes: number): Simulation {
  const sim = new Simulation({ seed, nodes, network: ROUGH_NETWORK });
  sim.converge(roundsBoundMs(nodes));
  sim.runUntilMs(sim.nowMs + WARM_UP_MS);
  return sim;
}

describe("failures (simulated, 5% loss, 1–100 ms delays)", () => {
  for (const { nodes, seeds } of SCALES) {
    test(
      `${nodes} nodes: a crashed node is dead everywhere within a bound; restarted (next generation) it is alive everywhere within log2 N + 4 rounds`,
      () => {
        const deadMs: number[] = [];
        const backRounds: number[] = [];
        forEachSeed(`crash and restart in ${nodes} nodes`, seeds, (seed) => {
          const sim = warmCluster(seed, nodes);
          const victim = nodeId(seed % nodes);
          const first = sim.generation(victim);
          sim.crash(victim);
          deadMs.push(sim.converge(deadBoundMs(nodes)));
          sim.runUntilMs(sim.nowMs + 2_000);
          sim.restart(victim);
          backRounds.push(sim.converge(roundsBoundMs(nodes)) / INTERVAL_MS);
          expect(sim.generation(victim)).toBeGreaterThan(first);
        });
        console.log(
          `gossip, ${nodes} nodes: a crash was seen dead everywhere in ${summary(deadMs, "ms")}; the restart alive everywhere in ${summary(backRounds, "rounds")}`,
        );
      },
      SLOW_MS,
    );
  }

  test(
    "10 nodes: a restart quicker than the detector still replaces the old generation everywhere",
    () => {
      forEachSeed("quick restart", 12, (seed) => {
        const sim = warmCluster(seed, 10);
        const victim = nodeId(5);
        const first = sim.generation(victim);
        sim.crash(victim);
        sim.runUntilMs(sim.nowMs + 300);
        sim.restart(victim);
        expect(sim.generation(victim)).toBeGreaterThan(first);
        // converge() checks that every view has the new generation, alive.
        sim.converge(roundsBoundMs(10));
      });
    },
    SLOW_MS,
  );

  test(
    "10 nodes: the two sides of a partition see each other dead, and converge again after the heal",
    () => {
      const splitMs: number[] = [];
      const healedRounds: number[] = [];
      forEachSeed("partition and heal", 12, (seed) => {
        const sim = warmCluster(seed, 10);
        const random = mulberry32(seed);
        const side = sim.ids.filter(() => random() < 0.5);
        if (side.length === 0 || side.length === 10) side.splice(0, side.length, nodeId(3), nodeId(4));
        const other = sim.ids.filter((id) => !side.includes(id));
        sim.partition(side);
        const statusOf = (observer: string, id: string) => sim.view(observer).find((m) => m.nodeId === id)?.status;
        const split = () =>
          [...side.flatMap((o) => other.map((x) => [o, x])), ...other.flatMap((o) => side.map((x) => [o, x]))].every(
            ([o, x]) => statusOf(o!, x!) === "dead",
          ) && [side, other].every((group) => group.every((o) => group.every((x) => statusOf(o, x) === "alive")));
        // A node may hear a peer's last heartbeats late, relayed by one on its own side who had them
        // fresher: its silence starts then. In the worst case the relay comes as late as the relayer's
        // own verdict, hence twice the crash bound.
        const startMs = sim.nowMs;
        expect(sim.runUntil(split, 2 * deadBoundMs(10)), `sides ${side} | ${other}`).toBeDefined();
        splitMs.push(sim.nowMs - startMs);
        sim.runUntilMs(sim.nowMs + 10_000);
        expect(split()).toBe(true);
        sim.heal();
        healedRounds.push(sim.converge(roundsBoundMs(10)) / INTERVAL_MS);
      });
      console.log(
        `gossip, 10 nodes: the sides of a partition saw each other dead in ${summary(splitMs, "ms")}; after the heal every view converged in ${summary(healedRounds, "rounds")}`,
      );
    },
    SLOW_MS,
  );

  for (const { nodes, seeds } of SCALES) {
    test(
      `${nodes} nodes: a node that leaves (lingering one interval) is seen as left by all within two rounds`,
      () => {
        const leftMs: number[] = [];
        forEachSeed(`leave in ${nodes} nodes`, seeds, (seed) => {
          const sim = warmCluster(seed, nodes);
          sim.leave(nodeId(seed % nodes));
          const startMs = sim.nowMs;
          expect(
            sim.runUntil(() => sim.firstDivergence() === undefined, 2 * INTERVAL_MS, 10),
            sim.firstDivergence(),
          ).toBeDefined();
          leftMs.push(sim.nowMs - startMs);
        });
        console.log(`gossip, ${nodes} nodes: a leave was seen everywhere in ${summary(leftMs, "ms")}`);
      },
      SLOW_MS,
    );
  }

  test(
    "10 nodes: a dead node is forgotten after forgetAfterMs and never comes back from old gossip",
    () => {
      const forgetAfterMs = 20_000;
      forEachSeed("forget", 6, (seed) => {
        const sim = new Simulation({ seed, nodes: 10, network: ROUGH_NETWORK, gossip: { forgetAfterMs } });
        sim.converge(roundsBoundMs(10));
        sim.runUntilMs(sim.nowMs + WARM_UP_MS);
        const victim = nodeId(7);
        sim.crash(victim);
        sim.converge(deadBoundMs(10));
        sim.runUntilMs(sim.nowMs + 3 * forgetAfterMs, (observer, gossiper) => {
          const seen = gossiper.members(sim.nowMs).find((m) => m.nodeId === victim);
          if (seen !== undefined && seen.status !== "dead")
            throw new Error(`${observer} sees the dead ${victim} as ${seen.status} at ${sim.nowMs} ms`);
        });
        for (const id of sim.upIds()) {
          expect(sim.view(id).map((m) => m.nodeId)).not.toContain(victim);
          expect(sim.gossiper(id).counters().nodesForgotten).toBe(1);
        }
      });
    },
    SLOW_MS,
  );
});

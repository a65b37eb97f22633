import { describe, expect, test } from "bun:test";
import { PhiDetector, type PhiDetectorOptions, phiOfNormal } from "../../../src/cluster/gossip/phi-detector.ts";
import { mulberry32 } from "../../../src/random.ts";

const OPTIONS: PhiDetectorOptions = {
  threshold: 8,
  windowSamplesMax: 10,
  stdDevFloorMs: 100,
  acceptablePauseMs: 0,
  bootstrapIntervalMs: 500,
};

/** A detector that has seen heartbeats every `intervalMs` from t=0 until the window is all real samples. */
function steady(
  intervalMs: number,
  options: Partial<PhiDetectorOptions> = {},
): { detector: PhiDetector; lastMs: number } {
  const all = { ...OPTIONS, ...options };
  const detector = new PhiDetector(all, 0);
  let lastMs = 0;
  for (let i = 0; i < all.windowSamplesMax; i++) detector.heartbeat((lastMs += intervalMs));
  return { detector, lastMs };
}

describe("phiOfNormal", () => {
  // -log10 of the upper tail Q(y) of the standard normal, from the usual tables:
  // Q(0) = 0.5, Q(1) = 0.158655, Q(2) = 0.0227501, Q(3) = 1.34990e-3, Q(4) = 3.16712e-5, Q(6) = 9.86588e-10.
  test.each([
    [0, 0.30103],
    [1, 0.79955],
    [2, 1.64302],
    [3, 2.8697],
    [4, 4.49933],
    [6, 9.00585],
    [-1, 0.07503],
  ])("at mean + %p σ phi is %p", (y, expected) => {
    expect(phiOfNormal(1000 + y * 100, 1000, 100)).toBeCloseTo(expected, 3);
  });

  test("the threshold 8 is 5.61 standard deviations past the mean; far in the tail phi stays finite", () => {
    expect(phiOfNormal(1561.2, 1000, 100)).toBeCloseTo(8, 2);
    expect(phiOfNormal(5000, 1000, 100)).toBeCloseTo(349.437, 1);
    expect(Number.isFinite(phiOfNormal(1e9, 1000, 100))).toBe(true);
  });

  test("phi only grows with the time since the last heartbeat, from 0", () => {
    let previous = 0;
    for (let elapsedMs = 0; elapsedMs <= 3000; elapsedMs += 7) {
      const phi = phiOfNormal(elapsedMs, 1000, 150);
      expect(phi).toBeGreaterThanOrEqual(previous);
      previous = phi;
    }
    expect(phiOfNormal(0, 1000, 150)).toBeLessThan(1e-9);
  });
});

describe("PhiDetector", () => {
  test("after one heartbeat it works from the bootstrap interval: mean 500, std dev 125 (the worked example)", () => {
    const detector = new PhiDetector(OPTIONS, 0);
    expect(detector.sampleCount).toBe(2);
    expect(detector.meanIntervalMs).toBe(500);
    expect(detector.stdDevMs).toBe(125);
    expect(detector.phi(500)).toBeCloseTo(0.30103, 4);
    expect(detector.phi(625)).toBeCloseTo(0.79955, 4);
    expect(detector.phi(750)).toBeCloseTo(1.64302, 4);
    expect(detector.phi(875)).toBeCloseTo(2.8697, 3);
    expect(detector.phi(1201.5)).toBeCloseTo(8, 2);
  });

  test("regular heartbeats: phi from the measured mean, with the std dev floor", () => {
    const { detector, lastMs } = steady(1000);
    expect(detector.meanIntervalMs).toBe(1000);
    expect(detector.stdDevMs).toBe(0);
    expect(detector.phi(lastMs + 1000)).toBeCloseTo(0.30103, 4);
    expect(detector.phi(lastMs + 1100)).toBeCloseTo(0.79955, 4);
    expect(detector.phi(lastMs + 1200)).toBeCloseTo(1.64302, 4);
    expect(detector.phi(lastMs + 1300)).toBeCloseTo(2.8697, 3);
    expect(detector.phi(lastMs + 1562)).toBeGreaterThan(8);
    expect(detector.lastArrivalMs).toBe(lastMs);
  });

  test("the acceptable pause moves the whole curve later", () => {
    const { detector, lastMs } = steady(1000, { acceptablePauseMs: 1500 });
    expect(detector.phi(lastMs + 2500)).toBeCloseTo(0.30103, 4);
    expect(detector.phi(lastMs + 2700)).toBeCloseTo(1.64302, 4);
  });

  test("irregular heartbeats widen the curve: the same silence is less suspicious", () => {
    const regular = steady(1000).detector;
    const irregular = new PhiDetector({ ...OPTIONS, bootstrapIntervalMs: 1000 }, 0);
    let t = 0;
    for (let i = 0; i < 10; i++) irregular.heartbeat((t += i % 2 === 0 ? 600 : 1400));
    expect(irregular.meanIntervalMs).toBe(1000);
    expect(irregular.stdDevMs).toBe(400);
    expect(irregular.phi(t + 1800)).toBeCloseTo(1.64302, 4);
    expect(regular.phi(10_000 + 1800)).toBeGreaterThan(8);
  });

  test("the window keeps the last windowSamplesMax intervals: the bootstrap and old rhythms fall out", () => {
    const { detector } = steady(1000);
    let t = 10_000;
    for (let i = 0; i < 9; i++) detector.heartbeat((t += 200));
    expect(detector.sampleCount).toBe(10);
    expect(detector.meanIntervalMs).toBe((9 * 200 + 1000) / 10);
    detector.heartbeat((t += 200));
    expect(detector.meanIntervalMs).toBeCloseTo(200, 9);
    expect(detector.phi(t + 200)).toBeCloseTo(0.30103, 4);
  });

  test("running sums stay exact over many laps of the window", () => {
    const random = mulberry32(7);
    const detector = new PhiDetector({ ...OPTIONS, windowSamplesMax: 50 }, 0);
    const intervals: number[] = [];
    let t = 0;
    for (let i = 0; i < 10_007; i++) {
      const interval = 1 + random() * 1000;
      intervals.push(interval);
      detector.heartbeat((t += interval));
    }
    const window = intervals.slice(-50);
    const mean = window.reduce((sum, x) => sum + x, 0) / 50;
    const variance = window.reduce((sum, x) => sum + (x - mean) ** 2, 0) / 50;
    expect(detector.meanIntervalMs).toBeCloseTo(mean, 6);
    expect(detector.stdDevMs).toBeCloseTo(Math.sqrt(variance), 6);
  });

  test("a heartbeat that comes while the peer counts as dead is not a sample: the silence teaches nothing", () => {
    const { detector, lastMs } = steady(1000);
    expect(detector.phi(lastMs + 60_000)).toBeGreaterThan(8);
    detector.heartbeat(lastMs + 60_000);
    expect(detector.meanIntervalMs).toBe(1000);
    expect(detector.phi(lastMs + 61_000)).toBeCloseTo(0.30103, 4);
  });

  test("restart (a new generation) restarts the clock without a sample", () => {
    const { detector, lastMs } = steady(1000);
    detector.restart(lastMs + 1500);
    expect(detector.meanIntervalMs).toBe(1000);
    expect(detector.lastArrivalMs).toBe(lastMs + 1500);
    expect(detector.phi(lastMs + 2500)).toBeCloseTo(0.30103, 4);
  });

  test("time going back is a broken invariant", () => {
    const detector = new PhiDetector(OPTIONS, 1000);
    expect(() => detector.heartbeat(999)).toThrow(/before the previous one/);
  });
});

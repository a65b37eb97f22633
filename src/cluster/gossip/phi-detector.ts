import { assert } from "../../errors.ts";

export interface PhiDetectorOptions {
  /** phi at or above which the peer counts as dead; heartbeats that arrive then are not samples. */
  threshold: number;
  /** Inter-arrival samples kept; older ones fall out, so the detector follows a changing network. */
  windowSamplesMax: number;
  /** Lower bound of the standard deviation: a very regular peer must not look dead one jitter late. */
  stdDevFloorMs: number;
  /** Added to the mean interval: a pause this long (GC, a lost datagram or two) costs no suspicion. */
  acceptablePauseMs: number;
  /** The interval assumed before any has been measured (Akka's first-heartbeat estimate). */
  bootstrapIntervalMs: number;
}

/**
 * Phi accrual failure detector for one peer (Hayashibara et al., "The φ accrual failure detector",
 * 2004), in the variant Akka uses: instead of a yes/no timeout it gives a level of suspicion,
 *
 *   phi(t) = -log10 P(the next heartbeat comes later than t after the last one)
 *
 * with P from a normal distribution fitted to the recent inter-arrival times (mean plus the
 * acceptable pause, standard deviation at least the floor). phi 1 is a 10% chance that the peer is
 * fine and only late, phi 8 one in 10^8. The first heartbeat seeds the window with two samples,
 * bootstrap ± bootstrap/4, so that phi means something before real intervals exist; they fall out of
 * the window like any others.
 *
 * Worked example (bootstrap 500 ms, no pause, floor 100 ms), after one heartbeat at t=0:
 *   window [375, 625]: mean 500, std dev 125
 *   phi(500) = 0.30   phi(625) = 0.80   phi(750) = 1.64   phi(875) = 2.87   phi(1201.5) = 8.00
 *
 * Intervals are kept in a ring with running sums, so a heartbeat and a phi cost O(1).
 */
export class PhiDetector {
  private readonly samples: Float64Array;
  private count = 0;
  private next = 0;
  private sum = 0;
  private sumSquares = 0;
  private last: number;

  constructor(
    private readonly options: PhiDetectorOptions,
    firstArrivalMs: number,
  ) {
    assert(options.windowSamplesMax >= 2, () => `windowSamplesMax must be at least 2, not ${options.windowSamplesMax}`);
    assert(
      options.stdDevFloorMs > 0 && options.bootstrapIntervalMs > 0,
      "stdDevFloorMs and bootstrapIntervalMs must be positive",
    );
    assert(options.acceptablePauseMs >= 0 && options.threshold > 0, "acceptablePauseMs must be ≥ 0 and threshold > 0");
    this.samples = new Float64Array(options.windowSamplesMax);
    this.last = firstArrivalMs;
    const spread = options.bootstrapIntervalMs / 4;
    this.record(options.bootstrapIntervalMs - spread);
    this.record(options.bootstrapIntervalMs + spread);
  }

  /** When the last heartbeat arrived. */
  get lastArrivalMs(): number {
    return this.last;
  }

  get sampleCount(): number {
    return this.count;
  }

  get meanIntervalMs(): number {
    return this.sum / this.count;
  }

  get stdDevMs(): number {
    const mean = this.meanIntervalMs;
    // Running sums can leave a hair below zero where every sample is the same.
    return Math.sqrt(Math.max(0, this.sumSquares / this.count - mean * mean));
  }

  /**
   * A heartbeat arrived. The interval since the last one becomes a sample only while the peer is not
   * considered dead (as in Akka): the silence of a crash, a partition or a restart says nothing about
   * the network's rhythm and would teach the detector to wait that long next time.
   */
  heartbeat(nowMs: number): void {
    if (!(nowMs >= this.last)) assert(false, () => `heartbeat at ${nowMs} is before the previous one at ${this.last}`);
    if (this.phi(nowMs) < this.options.threshold) this.record(nowMs - this.last);
    this.last = nowMs;
  }

  /** A heartbeat of a new incarnation (generation) of the peer: restart the clock, learn nothing. */
  restart(nowMs: number): void {
    if (!(nowMs >= this.last)) assert(false, () => `restart at ${nowMs} is before the last heartbeat at ${this.last}`);
    this.last = nowMs;
  }

  phi(nowMs: number): number {
    const mean = this.meanIntervalMs + this.options.acceptablePauseMs;
    const stdDev = Math.max(this.stdDevMs, this.options.stdDevFloorMs);
    return phiOfNormal(Math.max(0, nowMs - this.last), mean, stdDev);
  }

  private record(intervalMs: number): void {
    if (this.count === this.samples.length) {
      const evicted = this.samples[this.next]!;
      this.sum -= evicted;
      this.sumSquares -= evicted * evicted;
    } else {
      this.count++;
    }
    this.samples[this.next] = intervalMs;
    this.sum += intervalMs;
    this.sumSquares += intervalMs * intervalMs;
    this.next = (this.next + 1) % this.samples.length;
    // Adding and subtracting drifts; summing the window afresh once a lap keeps the error bounded.
    if (this.next === 0) this.resum();
  }

  private resum(): void {
    this.sum = 0;
    this.sumSquares = 0;
    for (let i = 0; i < this.count; i++) {
      this.sum += this.samples[i]!;
      this.sumSquares += this.samples[i]! * this.samples[i]!;
    }
  }
}

/** -log10 P(X > elapsed) for X ~ Normal(mean, stdDev). */
export function phiOfNormal(elapsedMs: number, meanMs: number, stdDevMs: number): number {
  const y = (elapsedMs - meanMs) / stdDevMs;
  const z = Math.abs(y) / Math.SQRT2;
  // P(X > mean + y·σ) = erfc(y/√2) / 2, and 1 - erfc(|y|/√2) / 2 below the mean.
  const logTail = y >= 0 ? Math.log(0.5) + logErfc(z) : Math.log1p(-0.5 * Math.exp(logErfc(z)));
  return Math.max(0, -logTail / Math.LN10);
}

/**
 * ln erfc(z) for z ≥ 0: the Chebyshev fit of Numerical Recipes' erfcc (relative error below 1.2e-7
 * everywhere), kept in logarithms so that phi stays finite and exact far into the tail where erfc
 * itself underflows. Akka's logistic approximation is off by more than one unit of phi near 8.
 */
function logErfc(z: number): number {
  const t = 1 / (1 + 0.5 * z);
  const poly =
    -1.26551223 +
    t *
      (1.00002368 +
        t *
          (0.37409196 +
            t *
              (0.09678418 +
                t *
                  (-0.18628806 +
                    t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (-0.82215223 + t * 0.17087277))))))));
  return Math.log(t) - z * z + poly;
}

export interface BackoffOptions {
  backoffInitialMs: number;
  backoffMaxMs: number;
}

/**
 * The delay before reconnection attempt `failures` (0 after a connection was lost or never made):
 * initial × 2^failures, capped, of which a random half is taken off ("equal jitter"), so that the
 * nodes that lost one peer together do not all dial it in the same millisecond, and no delay falls
 * below half its step.
 *
 *   initial 50, max 2000:  attempt 0 → 25..50 ms, 1 → 50..100, 2 → 100..200, … 6+ → 1000..2000
 */
export function backoffDelayMs(failures: number, random: () => number, options: BackoffOptions): number {
  // 2^31 is far past any cap; bounding the exponent keeps the arithmetic finite after many failures.
  const step = Math.min(options.backoffMaxMs, options.backoffInitialMs * 2 ** Math.min(failures, 31));
  return step / 2 + (step / 2) * random();
}

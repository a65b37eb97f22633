/**
 * A budget of events that refills over time (a token bucket): `burst` at once, `perSecond` after.
 * What a client may do a lot of, but not without end: reset streams, send SETTINGS or PINGs.
 */
export class RateBudget {
  private tokens: number;
  private lastMs: number;

  constructor(
    private readonly limits: { readonly burst: number; readonly perSecond: number },
    private readonly now: () => number = () => performance.now(),
  ) {
    this.tokens = limits.burst;
    this.lastMs = now();
  }

  /** Spends one; false once the budget is used up. */
  spend(): boolean {
    if (this.tokens < 1) {
      const nowMs = this.now();
      this.tokens = Math.min(this.limits.burst, this.tokens + ((nowMs - this.lastMs) * this.limits.perSecond) / 1000);
      this.lastMs = nowMs;
      if (this.tokens < 1) return false;
    }
    this.tokens--;
    return true;
  }
}

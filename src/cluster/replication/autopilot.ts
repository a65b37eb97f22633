import type { MemberStatus } from "../gossip/gossiper.ts";

/** Consul's default: long enough that a restart or a short network cut never costs a voter. */
export const DEAD_SERVER_AFTER_DEFAULT_MS = 5 * 60_000;

/**
 * Which voters gossip's phi detector has declared dead for long enough to be removed (autopilot).
 * Pure: fed gossip's view and the time on every round. A voter's clock starts the first round it
 * is seen dead and resets whenever it is seen otherwise (alive again, suspect, or a new
 * generation after a restart), so a flapping server is never removed for its total dead time.
 *
 *   round at   0 s  n3 alive        dead since —
 *              2 s  n3 dead         dead since 2 s
 *              9 s  n3 dead         dead for 7 s   ≥ 5 s: overdue
 *             10 s  n3 alive        dead since —
 */
export class DeadServers {
  private readonly deadSinceMs = new Map<string, number>();

  constructor(private readonly deadServerAfterMs: number) {}

  /** Takes one look at gossip's view; returns the names dead for at least deadServerAfterMs, in name order. */
  observe(view: readonly { nodeId: string; status: MemberStatus }[], nowMs: number): string[] {
    const dead = new Set(view.filter((member) => member.status === "dead").map((member) => member.nodeId));
    for (const name of this.deadSinceMs.keys()) if (!dead.has(name)) this.deadSinceMs.delete(name);
    for (const name of dead) if (!this.deadSinceMs.has(name)) this.deadSinceMs.set(name, nowMs);
    return [...this.deadSinceMs]
      .filter(([, sinceMs]) => nowMs - sinceMs >= this.deadServerAfterMs)
      .map(([name]) => name)
      .sort();
  }
}

export interface TargetCandidates {
  /** Gossip addresses of peers seen alive or suspect. */
  live: readonly string[];
  /** Gossip addresses of peers seen dead (not left). */
  dead: readonly string[];
  /** Seed addresses, this node's own left out. */
  seeds: readonly string[];
}

/**
 * Whom a tick sends a Syn to, after Cassandra's Gossiper.doGossip: `fanout` random live peers; one
 * dead peer with probability dead / (live + 1), so that a healed partition or a peer wrongly thought
 * dead is found again; one seed with probability seeds / (live + dead + 1), or surely while no peer
 * is live — that is how a node joins, and how two halves that each lost sight of the other meet.
 * No address twice.
 */
export function chooseTargets(candidates: TargetCandidates, fanout: number, random: () => number): string[] {
  const targets = sample(candidates.live, fanout, random);
  const { live, dead, seeds } = candidates;
  if (dead.length > 0 && random() < dead.length / (live.length + 1)) targets.push(...sample(dead, 1, random));
  const freshSeeds = seeds.filter((seed) => !targets.includes(seed));
  if (freshSeeds.length > 0 && (live.length === 0 || random() < seeds.length / (live.length + dead.length + 1))) {
    targets.push(...sample(freshSeeds, 1, random));
  }
  return targets;
}

/** `count` distinct random items (all of them, if there are fewer): a partial Fisher–Yates. */
function sample(items: readonly string[], count: number, random: () => number): string[] {
  const pool = [...items];
  const taken = Math.min(count, pool.length);
  for (let i = 0; i < taken; i++) {
    const j = i + Math.floor(random() * (pool.length - i));
    [pool[i], pool[j]] = [pool[j]!, pool[i]!];
  }
  return pool.slice(0, taken);
}

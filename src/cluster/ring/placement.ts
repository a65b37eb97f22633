import { assert } from "../../errors.ts";
import { MinHeap } from "./min-heap.ts";
import { PARTITIONS_MAX } from "./partition-of.ts";

/**
 * Which nodes hold each partition: `placement[p]` lists partition p's replicas, distinct, the one
 * that should lead first. The meta group keeps the placement; this module only computes the next one.
 */
export type Placement = readonly (readonly string[])[];

export interface PlacementShape {
  readonly partitions: number;
  readonly replicas: number;
}

/** What a node holds under a placement. */
export interface NodeShare {
  readonly replicas: number;
  readonly leaders: number;
}

/**
 * The placement for `nodes`, moving as little as possible from `previous` (none when the cluster is
 * created). Pure and deterministic: the same inputs, in any node order, give the same placement,
 * and a placement that already fits its nodes comes back unchanged.
 *
 * Each partition gets min(replicas, nodes) replicas on distinct nodes. Every node holds
 * floor(P·R/N) or ceil(P·R/N) replicas, so shares differ by one at most. A replica moves only when
 * its node left or holds more than its share; a join therefore moves about 1/(N+1) of the replicas
 * (all of them to the new node) and a leave the leaver's 1/N. Which replica a full node gives up, and
 * where a homeless replica goes, follows rendezvous hashing (the highest hash of partition and node
 * wins), so the moves spread over partitions and nodes instead of following their names.
 *
 *   4 partitions, 2 replicas, nodes a b c (8 replicas: shares 2 3 3):   0: c a   1: b c   2: a b   3: c b
 *   d joins (shares 2 2 2 2): b and c each give up one replica to d:    0: a c   1: b d   2: d a   3: c b
 *
 * Leaders are spread the same way: counts differ by one wherever the replicas allow it. A
 * partition changes leader only when its leader left, or on a chain of hand-overs that takes one
 * leadership from a node with too many to one with too few.
 */
export function place(previous: Placement | undefined, nodes: readonly string[], shape: PlacementShape): Placement {
  const { partitions, replicas } = shape;
  assert(
    Number.isInteger(partitions) && partitions >= 1 && partitions <= PARTITIONS_MAX,
    () => `partitions must be an integer in [1, ${PARTITIONS_MAX}], got ${partitions}`,
  );
  assert(Number.isInteger(replicas) && replicas >= 1, () => `replicas must be an integer ≥ 1, got ${replicas}`);
  assert(previous === undefined || previous.length === partitions, "the partition count is fixed at creation");
  const members = [...new Set(nodes)].sort();
  assert(members.length > 0, "a placement needs at least one node");

  const board = new Board(members, partitions, Math.min(replicas, members.length), previous);
  board.shedSurplus();
  board.fillHoles();
  board.balanceLeaders();
  return board.placement();
}

/** Each node's replicas and leaders under a placement, for every node in `nodes` (zero when it holds none). */
export function shares(placement: Placement, nodes: readonly string[]): Map<string, NodeShare> {
  const counts = new Map<string, { replicas: number; leaders: number }>(
    [...nodes].sort().map((node) => [node, { replicas: 0, leaders: 0 }]),
  );
  for (const holders of placement) {
    holders.forEach((node, index) => {
      const count = counts.get(node) ?? { replicas: 0, leaders: 0 };
      count.replicas += 1;
      if (index === 0) count.leaders += 1;
      counts.set(node, count);
    });
  }
  return counts;
}

/** How many replicas `after` places on a node that did not hold that partition in `before`: the copies to make. */
export function movedReplicas(before: Placement, after: Placement): number {
  assert(before.length === after.length, "placements of different partition counts");
  let moved = 0;
  after.forEach((holders, partition) => {
    const had = new Set(before[partition]);
    for (const node of holders) if (!had.has(node)) moved += 1;
  });
  return moved;
}

/** One link of a leadership chain: `to` takes over the lead of `partition` from its leader. */
interface LeaderShift {
  readonly partition: number;
  readonly to: string;
}

/** The links that reached `to`, first link first. */
function chainTo(to: string, reachedBy: ReadonlyMap<string, LeaderShift | null>, holders: Placement): LeaderShift[] {
  const chain: LeaderShift[] = [];
  for (let shift = reachedBy.get(to); shift; shift = reachedBy.get(holders[shift.partition]?.[0] as string)) {
    chain.unshift(shift);
  }
  return chain;
}

/** Rendezvous hashing's weight of a node for a partition: the higher, the more the node wants it. */
function affinity(partition: number, node: string): number {
  return Bun.hash.xxHash32(`${partition}\u0000${node}`);
}

/** The working state of one `place` call: every partition's holders and every node's counts. */
class Board {
  private readonly holders: string[][];
  private readonly load = new Map<string, number>();
  /** Every node holds `base` replicas, and `largerLeft` more of them one replica more. */
  private readonly base: number;
  private largerLeft: number;

  constructor(
    private readonly members: readonly string[],
    private readonly partitions: number,
    private readonly width: number,
    previous: Placement | undefined,
  ) {
    const isMember = new Set(members);
    this.holders = Array.from({ length: partitions }, (_, partition) =>
      [...new Set(previous?.[partition] ?? [])].filter((node) => isMember.has(node)).slice(0, width),
    );
    for (const node of members) this.load.set(node, 0);
    for (const held of this.holders) for (const node of held) this.load.set(node, this.loadOf(node) + 1);
    const total = partitions * width;
    this.base = Math.floor(total / members.length);
    this.largerLeft = total % members.length;
  }

  /**
   * A node over its share gives up the replicas it wants least, leaderships last, one per partition.
   * The larger shares go first to the nodes holding most, so none of them moves; those left over go
   * to whichever nodes fill the holes, so that the holes can be filled without swaps.
   */
  shedSurplus(): void {
    const heaviestFirst = [...this.members].sort((a, b) => this.loadOf(b) - this.loadOf(a) || (a < b ? -1 : 1));
    for (const node of heaviestFirst) {
      const keepsLarger = this.loadOf(node) > this.base && this.largerLeft > 0;
      if (keepsLarger) this.largerLeft -= 1;
      const surplus = this.loadOf(node) - this.base - (keepsLarger ? 1 : 0);
      if (surplus <= 0) continue;
      const owned = this.holders
        .map((held, partition) => ({ held, partition }))
        .filter(({ held }) => held.includes(node))
        .sort(
          (a, b) =>
            Number(a.held.length < this.width) - Number(b.held.length < this.width) ||
            Number(a.held[0] === node) - Number(b.held[0] === node) ||
            affinity(a.partition, node) - affinity(b.partition, node),
        );
      for (const { held } of owned.slice(0, surplus)) {
        held.splice(held.indexOf(node), 1);
        this.load.set(node, this.loadOf(node) - 1);
      }
    }
  }

  /**
   * Every partition short of replicas takes the node with the most room left that it lacks (the
   * highest affinity among equals); when every node with room holds it already, a chain of moves
   * through other partitions makes room.
   */
  fillHoles(): void {
    // Each chain fills one hole.
    for (let chains = 0; chains <= this.partitions * this.width; chains += 1) {
      const partition = this.fillDirectly();
      if (partition < 0) return;
      assert(
        this.members.some((node) => this.roomOf(node) > 0),
        "a partition lacks a replica while every node is full",
      );
      this.fillByChain(partition);
    }
    assert(false, "filling the holes did not end");
  }

  /**
   * Fills the holes that have a direct choice, the partition with the fewest nodes to choose from
   * first (the lowest-numbered among equals), before others take them; a chain can end at any
   * node with room, so chains go last. Returns the lowest-numbered partition still short of a
   * replica, or -1 when none is.
   *
   * A partition's choices are the nodes with room less those of its holders with room, so the
   * fewest choices is the most holders with room. Partitions wait in one queue per count of
   * holders with room, lowest-numbered first; an entry whose partition was filled or whose count
   * changed since is skipped. The count changes only by this partition's fill or when a holder runs
   * out of room (for good: loads only grow here), so this costs O(P·R·(N + log P)) instead of a
   * scan of every partition per replica placed.
   */
  private fillDirectly(): number {
    const hasHole = (partition: number) => (this.holders[partition] as string[]).length < this.width;
    const roomy = new Set(this.members.filter((node) => this.roomOf(node) > 0));
    const roomyHolders = this.holders.map((held) => held.filter((node) => roomy.has(node)).length);
    const queues = Array.from({ length: this.width }, () => new MinHeap());
    const holes = new MinHeap();
    const enqueue = (partition: number) => queues[roomyHolders[partition] as number]?.push(partition);
    for (let partition = 0; partition < this.partitions; partition += 1) {
      if (!hasHole(partition)) continue;
      enqueue(partition);
      holes.push(partition);
    }
    /** The lowest-numbered partition with a hole and `count` holders with room, or -1. */
    const firstOf = (count: number) => {
      const queue = queues[count] as MinHeap;
      for (let top = queue.peek(); top !== undefined; queue.pop(), top = queue.peek()) {
        if (hasHole(top) && roomyHolders[top] === count) return top;
      }
      return -1;
    };
    // Each turn fills one hole.
    for (let filled = 0; filled <= this.partitions * this.width; filled += 1) {
      let partition = -1;
      for (let count = Math.min(this.width, roomy.size) - 1; count >= 0 && partition < 0; count -= 1)
        partition = firstOf(count);
      if (partition < 0) {
        while (holes.size > 0 && !hasHole(holes.peek() as number)) holes.pop();
        return holes.peek() ?? -1;
      }
      const held = this.holders[partition] as string[];
      const node = this.mostWanted(
        partition,
        [...roomy].filter((candidate) => !held.includes(candidate)),
      );
      held.push(node);
      roomyHolders[partition] = (roomyHolders[partition] as number) + 1;
      this.take(node);
      // The node may have run out of room, and with the last larger share, every node at the base.
      const full = new Set([...roomy].filter((candidate) => this.roomOf(candidate) <= 0));
      for (const gone of full) roomy.delete(gone);
      if (full.size > 0) {
        this.holders.forEach((other, q) => {
          if (!hasHole(q)) return;
          const lost = other.filter((holder) => full.has(holder)).length;
          if (lost === 0) return;
          roomyHolders[q] = (roomyHolders[q] as number) - lost;
          enqueue(q);
        });
      }
      if (hasHole(partition)) enqueue(partition);
    }
    assert(false, "filling the holes directly did not end");
  }

  /**
   * Moves leaderships along chains a → b (a leads a partition b holds) from a node with the most to
   * one with two fewer, shortest chain first, until no such chain is left: each shift lowers the sum
   * of squared leader counts, so this ends, at counts as even as the replicas allow.
   */
  balanceLeaders(): void {
    const leaders = new Map(this.members.map((node) => [node, 0]));
    for (const held of this.holders) leaders.set(held[0] as string, (leaders.get(held[0] as string) ?? 0) + 1);
    const count = (node: string) => leaders.get(node) ?? 0;
    // Each shift lowers the sum of squares (at most P²) by two or more.
    for (let shifts = 0; shifts <= this.partitions * this.partitions; shifts += 1) {
      const led = this.ledPartitions();
      let chain: LeaderShift[] | undefined;
      for (const from of this.members
        .filter((node) => count(node) >= 2)
        .sort((a, b) => count(b) - count(a) || (a < b ? -1 : 1))) {
        chain = this.leaderChain(from, led, (node) => count(node) <= count(from) - 2);
        if (chain !== undefined) break;
      }
      if (chain === undefined) return;
      const first = this.holders[(chain[0] as LeaderShift).partition] as string[];
      leaders.set(first[0] as string, count(first[0] as string) - 1);
      for (const { partition, to } of chain) {
        const held = this.holders[partition] as string[];
        held.splice(held.indexOf(to), 1);
        held.unshift(to);
      }
      const last = (chain[chain.length - 1] as LeaderShift).to;
      leaders.set(last, count(last) + 1);
    }
    assert(false, "leader balancing did not settle");
  }

  placement(): Placement {
    return this.holders.map((held) => Object.freeze([...held]));
  }

  /** The partitions each node leads, lowest-numbered first. */
  private ledPartitions(): Map<string, number[]> {
    const led = new Map<string, number[]>();
    this.holders.forEach((held, partition) => {
      const leader = held[0] as string;
      const partitions = led.get(leader);
      if (partitions === undefined) led.set(leader, [partition]);
      else partitions.push(partition);
    });
    return led;
  }

  /** The shortest chain of leadership shifts from `from` to a node that `isTarget`, by breadth-first search. */
  private leaderChain(
    from: string,
    led: ReadonlyMap<string, readonly number[]>,
    isTarget: (node: string) => boolean,
  ): LeaderShift[] | undefined {
    const reachedBy = new Map<string, LeaderShift | null>([[from, null]]);
    const queue = [from];
    for (let head = 0; head < queue.length; head += 1) {
      const node = queue[head] as string;
      for (const partition of led.get(node) ?? []) {
        for (const to of this.holders[partition] as string[]) {
          if (reachedBy.has(to)) continue;
          reachedBy.set(to, { partition, to });
          if (isTarget(to)) return chainTo(to, reachedBy, this.holders);
          queue.push(to);
        }
      }
    }
    return undefined;
  }

  /**
   * Fills a hole of `partition` when every node with room holds it already, by the shortest chain
   * of moves: the partition takes y1, which gives up a partition q1 to y2, …, until the last node
   * of the chain has room. Breadth-first over nodes, so a swap through one other partition is
   * found before anything longer.
   */
  private fillByChain(partition: number): void {
    const held = this.holders[partition] as string[];
    const reachedBy = new Map<string, { readonly from: string; readonly partition: number } | null>();
    const queue = this.members
      .filter((node) => !held.includes(node))
      .sort((a, b) => affinity(partition, b) - affinity(partition, a));
    for (const node of queue) reachedBy.set(node, null);
    for (let head = 0; head < queue.length; head += 1) {
      const node = queue[head] as string;
      if (this.roomOf(node) > 0) {
        this.take(node);
        let to = node;
        for (let link = reachedBy.get(to); link; link = reachedBy.get(to)) {
          const other = this.holders[link.partition] as string[];
          other[other.indexOf(link.from)] = to;
          to = link.from;
        }
        held.push(to);
        return;
      }
      this.holders.forEach((other, q) => {
        if (!other.includes(node)) return;
        for (const next of this.members) {
          if (reachedBy.has(next) || other.includes(next)) continue;
          reachedBy.set(next, { from: node, partition: q });
          queue.push(next);
        }
      });
    }
    assert(false, () => `no chain of moves makes room for partition ${partition}`);
  }

  private mostWanted(partition: number, nodes: readonly string[]): string {
    let best = nodes[0] as string;
    for (const node of nodes) {
      const room = this.roomOf(node);
      const bestRoom = this.roomOf(best);
      if (room > bestRoom || (room === bestRoom && affinity(partition, node) > affinity(partition, best))) best = node;
    }
    return best;
  }

  private loadOf(node: string): number {
    return this.load.get(node) ?? 0;
  }

  /** How many more replicas a node may take: up to the base share, and one more while larger shares are left. */
  private roomOf(node: string): number {
    return this.base - this.loadOf(node) + (this.largerLeft > 0 ? 1 : 0);
  }

  /** A node takes one more replica; reaching base + 1 uses up one of the larger shares. */
  private take(node: string): void {
    this.load.set(node, this.loadOf(node) + 1);
    if (this.loadOf(node) > this.base) this.largerLeft -= 1;
  }
}

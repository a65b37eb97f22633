import { assert } from "../../errors.ts";
import type { ConfChange, ConfState, NodeId } from "./types.ts";

/** Whether `id` is a voter or a learner of `conf`. */
export function isMember(conf: ConfState, id: NodeId): boolean {
  return conf.voters.includes(id) || conf.learners.includes(id);
}

/** The members of a Raft group as one node knows them: voters (the quorum) and learners. */
export class Configuration {
  private readonly voters: Set<NodeId>;
  private readonly learners: Set<NodeId>;

  constructor(state: ConfState) {
    this.voters = new Set(state.voters);
    this.learners = new Set(state.learners);
    assert(![...this.learners].some((id) => this.voters.has(id)), "a node is a voter and a learner at once");
  }

  get quorum(): number {
    return Math.floor(this.voters.size / 2) + 1;
  }

  isVoter(id: NodeId): boolean {
    return this.voters.has(id);
  }

  isMember(id: NodeId): boolean {
    return this.voters.has(id) || this.learners.has(id);
  }

  voterIds(): NodeId[] {
    return [...this.voters].sort((a, b) => a - b);
  }

  /** Every member but `self`: who a leader replicates to. */
  replicasExcept(self: NodeId): NodeId[] {
    return [...this.voters, ...this.learners].filter((id) => id !== self).sort((a, b) => a - b);
  }

  state(): ConfState {
    return { voters: this.voterIds(), learners: [...this.learners].sort((a, b) => a - b) };
  }

  apply(change: ConfChange): void {
    this.voters.delete(change.node);
    this.learners.delete(change.node);
    if (change.type === "addVoter") this.voters.add(change.node);
    else if (change.type === "addLearner") this.learners.add(change.node);
  }
}

/**
 * The configuration a node uses: the latest in its log, committed or not (the dissertation's rule,
 * §4.1): a snapshot's members, then every change in the log after it, in order. A change takes
 * effect as soon as it is appended, and is undone if a conflicting leader truncates it away — so
 * the members of the newest configuration can elect a leader among themselves even before they
 * learn that it is committed.
 */
export class ConfigTracker {
  private changes: { index: number; change: ConfChange }[] = [];
  private config: Configuration;

  constructor(private base: ConfState) {
    this.config = new Configuration(base);
  }

  get current(): Configuration {
    return this.config;
  }

  /** The index of the newest change in the log (0: none since the base). */
  get lastChangeIndex(): number {
    return this.changes[this.changes.length - 1]?.index ?? 0;
  }

  /** The log now ends at `lastIndex` and holds `entries` (the ones just written) at their indexes. */
  observe(entries: readonly { index: number; conf?: ConfChange }[], lastIndex: number): void {
    const from = entries[0]?.index ?? lastIndex + 1;
    // Nearly every write: no change among the entries and none at or after them, so nothing moves
    // (the general case below would rebuild the same list).
    const last = this.lastChangeIndex;
    if (last < from && last <= lastIndex && entries.every((e) => e.conf === undefined)) return;
    const kept = this.changes.filter((c) => c.index < from && c.index <= lastIndex);
    const added = entries
      .filter((e) => e.conf !== undefined && e.index <= lastIndex)
      .map((e) => ({ index: e.index, change: e.conf! }));
    const after = this.changes.filter((c) => c.index >= from + entries.length && c.index <= lastIndex);
    const next = [...kept, ...added, ...after];
    if (
      next.length === this.changes.length &&
      next.every(
        (c, i) => c === this.changes[i] || (c.index === this.changes[i]!.index && c.change === this.changes[i]!.change),
      )
    )
      return;
    this.changes = next;
    this.rebuild();
  }

  /** The configuration as of entry `index`: the changes after it left out. */
  at(index: number): Configuration {
    const config = new Configuration(this.base);
    for (const { index: at, change } of this.changes) if (at <= index) config.apply(change);
    return config;
  }

  /** A snapshot replaced the log: its members are the base now. */
  reset(base: ConfState): void {
    this.base = base;
    this.changes = [];
    this.rebuild();
  }

  private rebuild(): void {
    const config = new Configuration(this.base);
    for (const { change } of this.changes) config.apply(change);
    this.config = config;
  }
}

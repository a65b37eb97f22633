import { HomeKvError } from "../../errors.ts";
import { realTimers } from "../../timers.ts";
import type { Raft } from "../raft/raft.ts";
import type { Entry } from "../raft/types.ts";
import { type HostedGroupOptions, hostGroup } from "../replication/hosted-group.ts";
import type { RaftDriver } from "../replication/raft-driver.ts";
import type { Placement } from "../ring/placement.ts";
import { decodeMetaCommand, decodeMetaState, encodeMetaCommand, encodeMetaState } from "./meta-format.ts";
import { type MetaCommand, type MetaNode, type MetaOutcome, MetaState } from "./meta-state.ts";
import { TimestampOracle } from "./timestamp-oracle.ts";

/** The meta group's Raft group id (partition p's group will be p + 2). */
export const META_GROUP = 1;
/** Timestamps a reservation adds: one meta entry per this many timestamps handed out. */
const TIMESTAMP_WINDOW = 10_000;
/** Entries applied past the log's snapshot before it is compacted to the state (a few KiB each time). */
const COMPACT_AFTER_ENTRIES = 1_000;

export interface MetaGroupOptions extends HostedGroupOptions {
  /** How long a request for timestamps waits for the leadership to be confirmed. */
  confirmTimeoutMs: number;
  timestampWindow?: number;
  compactAfterEntries?: number;
  /** The log failed (a compaction's write or sync): the group must restart. */
  onFatal?: (error: unknown) => void;
  /**
   * The cluster to create when a leader takes office and finds none (every founding node passes
   * the same): its shape, then each node, proposed by whichever node leads first.
   */
  founding?: { readonly partitions: number; readonly replicas: number; readonly nodes: readonly MetaNode[] };
  /** Told of the placement whenever it changes, and at start when the log's snapshot holds one. */
  onPlacement?: (placement: Placement) => void;
  /** Told of the state whenever its nodes change, and at start (peers to dial, replicas to found). */
  onNodes?: (state: MetaState) => void;
}

/**
 * A node's replica of the meta group (docs/internals/partitions.md): the MetaState replicated by a
 * Raft group in the node's host. Its leader keeps the placement fitting the nodes (proposing
 * `nextPlacement` whenever the nodes change), keeps a timestamp window reserved ahead, and hands out
 * timestamps (`timestamps`), each batch confirmed by a ReadIndex round begun after it was taken.
 */
export class MetaGroup {
  state = new MetaState();
  private readonly oracle: TimestampOracle;
  private readonly raft: Raft;
  readonly driver: RaftDriver<MetaOutcome | undefined>;
  /** The term in which this node's oracle leads (0: it does not). */
  private leadingTerm = 0;
  private placing = false;
  private compacting = false;

  constructor(private readonly options: MetaGroupOptions) {
    this.oracle = new TimestampOracle(options.timestampWindow ?? TIMESTAMP_WINDOW);
    // The log begins where its snapshot ends: the state then is the snapshot's.
    const snapshot = options.log.snapshot();
    if (snapshot.index > 0) this.state = decodeMetaState(snapshot.data);
    ({ raft: this.raft, driver: this.driver } = hostGroup<MetaOutcome | undefined>(options, META_GROUP, {
      apply: (entry) => this.apply(entry),
      restore: (snapshot) => {
        this.state = decodeMetaState(snapshot.data);
        this.options.onNodes?.(this.state);
        this.placementChanged();
      },
    }));
    this.options.onNodes?.(this.state);
    this.placementChanged();
  }

  /** Proposes a command (leader only: E_NOT_LEADER elsewhere); resolves with what applying it did. */
  async propose(command: MetaCommand): Promise<MetaOutcome> {
    return (await this.driver.propose(encodeMetaCommand(command)))!;
  }

  /**
   * The first of `count` consecutive timestamps, strictly above every timestamp this group handed
   * out before it was asked (leader only). Waits for a reservation when the window is spent.
   */
  async timestamps(count: number): Promise<number> {
    const timers = this.options.timers ?? realTimers;
    const deadline = timers.now() + this.options.confirmTimeoutMs;
    for (;;) {
      const term = this.leadingTerm;
      if (!this.confirmOffice(term))
        throw new HomeKvError("E_NOT_LEADER", "this node does not lead the meta group (or has not taken office yet)");
      const first = this.oracle.take(count);
      this.reserveIfWanted();
      if (first !== undefined) {
        await this.driver.readBarrier(this.options.confirmTimeoutMs);
        if (!this.confirmOffice(term))
          throw new HomeKvError("E_NOT_LEADER", "the meta group's leadership changed while timestamps were handed out");
        return first;
      }
      if (timers.now() > deadline) throw new HomeKvError("E_UNAVAILABLE", "no timestamp window was reserved in time");
      await this.driver.nextTick();
    }
  }

  /** Whether this node still leads in `term`, the term its oracle took office in; when not, the oracle leaves office (it hands out nothing more). */
  private confirmOffice(term: number): boolean {
    if (term !== 0 && this.driver.leads && this.raft.term === term) return true;
    if (this.leadingTerm === term) {
      this.leadingTerm = 0;
      this.oracle.follow();
    }
    return false;
  }

  private apply(entry: Entry): MetaOutcome | undefined {
    const outcome = this.applyEntry(entry);
    this.compactIfDue(entry.index);
    return outcome;
  }

  /**
   * Compacts the log to `index` once enough entries lie behind its snapshot: the snapshot is the
   * state as of `index` (small: the nodes, the placement, a limit), which a restart begins from and
   * a lagging member is sent.
   */
  private compactIfDue(index: number): void {
    const { log } = this.options;
    if (this.compacting || index - log.snapshot().index < (this.options.compactAfterEntries ?? COMPACT_AFTER_ENTRIES))
      return;
    this.compacting = true;
    log.compact(index, encodeMetaState(this.state), this.raft.confState(index)).then(
      () => {
        this.compacting = false;
      },
      (error) => this.options.onFatal?.(error),
    );
  }

  private applyEntry(entry: Entry): MetaOutcome | undefined {
    if (entry.data === null) {
      if (takesOffice(entry, this.raft)) {
        this.leadingTerm = entry.term;
        this.oracle.lead(this.state.timestampLimit);
        this.reserveIfWanted();
        this.foundIfNew();
        this.placeIfNeeded();
      }
      return undefined;
    }
    if (entry.conf) return undefined;
    const command = decodeMetaCommand(entry.data);
    const outcome = this.state.apply(command);
    if (command.type === "reserveTimestamps") this.oracle.reserved(this.state.timestampLimit);
    if (command.type === "setPlacement" && outcome.ok) this.placementChanged();
    if (command.type === "putNode" || command.type === "removeNode" || command.type === "create") {
      if (outcome.ok) this.options.onNodes?.(this.state);
      this.placeIfNeeded();
    }
    return outcome;
  }

  private placementChanged(): void {
    if (this.state.placement.length > 0) this.options.onPlacement?.(this.state.placement);
  }

  /**
   * Creates the founding cluster until its first placement is made: its shape, then every founding
   * node not recorded yet. A proposal lost with the leadership is made again by the next leader
   * (a second create is refused, which is harmless).
   */
  private foundIfNew(): void {
    const { founding } = this.options;
    if (founding === undefined || this.state.placementVersion > 0) return;
    const { partitions, replicas, nodes } = founding;
    const missing = nodes.filter((node) => !this.state.nodes.has(node.name));
    const created = this.state.shape ? Promise.resolve() : this.propose({ type: "create", partitions, replicas });
    created.then(() => Promise.all(missing.map((node) => this.propose({ type: "putNode", node })))).catch(() => {});
  }

  /** Whether the founding nodes are still being recorded: the first placement waits for all of them. */
  private founding(): boolean {
    const { founding } = this.options;
    return (
      founding !== undefined &&
      this.state.placementVersion === 0 &&
      founding.nodes.some((node) => !this.state.nodes.has(node.name))
    );
  }

  private reserveIfWanted(): void {
    const through = this.oracle.wanted();
    if (through === undefined) return;
    this.propose({ type: "reserveTimestamps", through }).catch(() => this.oracle.reservationFailed());
  }

  /**
   * The leader proposes the placement that fits the nodes, one proposal at a time, and looks again
   * once one is applied (the nodes may have changed meanwhile). A proposal that failed waits for
   * the next change of nodes or of leader.
   */
  private placeIfNeeded(): void {
    if (this.placing || this.founding() || !this.confirmOffice(this.leadingTerm)) return;
    const next = this.state.nextPlacement();
    if (next === undefined) return;
    this.placing = true;
    this.propose(next).then(
      (outcome) => {
        this.placing = false;
        if (outcome.ok) this.placeIfNeeded();
      },
      () => {
        this.placing = false;
      },
    );
  }
}

/**
 * Whether applying `entry` (an empty one) puts the leader in office: it is the leader's own first
 * entry of its term, so everything committed before the term is applied and the reserved limit is
 * the highest any leader reserved. An empty entry of an older term, applied by a node that leads now
 * (it learned of that entry's commit only after its election), does not: reservations after it may
 * still be unapplied.
 */
export function takesOffice(entry: Entry, raft: { readonly role: string; readonly term: number }): boolean {
  return entry.data === null && raft.role === "leader" && entry.term === raft.term;
}

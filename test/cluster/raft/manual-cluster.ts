import { Raft, type RaftOptions } from "../../../src/cluster/raft/raft.ts";
import { MemoryStorage } from "../../../src/cluster/raft/storage.ts";
import type { Message, NodeId } from "../../../src/cluster/raft/types.ts";
import { mulberry32 } from "../../../src/random.ts";

/** A cluster whose every message a scenario test routes by hand: which are delivered, which dropped. */
export class ManualCluster {
  readonly rafts = new Map<NodeId, Raft>();
  readonly storages = new Map<NodeId, MemoryStorage>();
  /** Messages sent and not yet delivered or dropped. */
  queue: Message[] = [];
  readonly reads: { node: NodeId; index: number; request: string }[] = [];
  readonly ids: NodeId[];

  /** `firstVoters` of the `size` nodes form the group (all by default); the others wait to be added. */
  constructor(
    size: number,
    private readonly options: Partial<
      Pick<RaftOptions, "entriesPerMessageMax" | "inflightMessagesMax" | "inflightBytesMax" | "quiesce">
    > & { firstVoters?: number } = {},
  ) {
    this.ids = Array.from({ length: size }, (_, i) => i + 1);
    for (const id of this.ids) {
      this.storages.set(id, new MemoryStorage());
      this.start(id);
    }
  }

  raft(id: NodeId): Raft {
    return this.rafts.get(id)!;
  }

  /** Each start draws new randomness, as a restarted process would. */
  private starts = 0;

  start(id: NodeId): void {
    const { firstVoters = this.ids.length, ...options } = this.options;
    this.rafts.set(
      id,
      new Raft({
        id,
        voters: this.ids.slice(0, firstVoters),
        storage: this.storages.get(id)!,
        random: mulberry32(id * 1_000 + this.starts++),
        ...options,
      }),
    );
  }

  crash(id: NodeId): void {
    this.rafts.delete(id);
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
  }

  /** Persists and collects every live node's Ready. */
  flush(): void {
    for (const [id, raft] of this.rafts) {
      if (!raft.hasReady()) continue;
      const ready = raft.ready();
      const storage = this.storages.get(id)!;
      if (ready.snapshot) storage.applySnapshot(ready.snapshot);
      if (ready.hardState) storage.setHardState(ready.hardState);
      storage.append(ready.entries);
      this.queue.push(...ready.messages);
      for (const state of ready.readStates) this.reads.push({ node: id, ...state });
      raft.advance(ready);
    }
  }

  /** Delivers queued messages that `allow` lets through (dropping the rest) until none are left. */
  settle(allow: (m: Message) => boolean = () => true, roundsMax = 100): void {
    for (let round = 0; round < roundsMax; round++) {
      this.flush();
      if (this.queue.length === 0) return;
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) if (allow(m) && this.rafts.has(m.to)) this.raft(m.to).step(m);
    }
    throw new Error(`messages still flowing after ${roundsMax} rounds`);
  }

  /**
   * Elects `id`: the others of `among` first go an election timeout without hearing a leader (their
   * lease over, as after a leader's crash; what they send meanwhile is dropped), then `id` campaigns
   * and every message among `among` is delivered.
   */
  elect(id: NodeId, among: readonly NodeId[] = this.ids, allow: (m: Message) => boolean = between(among)): void {
    for (const other of among) if (other !== id && this.rafts.has(other)) this.tick(other, ELECTION_TICKS);
    this.settle(() => false);
    // A second try when the first only taught the candidate a higher term (a pre-vote refused by a newer node).
    for (let attempt = 0; attempt < 2 && this.raft(id).role !== "leader"; attempt++) {
      this.raft(id).campaignNow();
      this.settle(allow);
    }
    if (this.raft(id).role !== "leader") throw new Error(`node ${id} was not elected among ${among.join(",")}`);
  }

  /**
   * Settles as `settle` does, but keeps back the messages `hold` picks instead of delivering them:
   * returned, to be delivered late with `deliver`.
   */
  settleHolding(hold: (m: Message) => boolean, allow: (m: Message) => boolean = () => true): Message[] {
    const held: Message[] = [];
    this.settle((m) => {
      if (!hold(m)) return allow(m);
      held.push(m);
      return false;
    });
    return held;
  }

  /** Delivers one message now, however old, and collects what its receiver does about it. */
  deliver(m: Message): void {
    this.raft(m.to).step(m);
    this.flush();
  }

  tick(id: NodeId, times = 1): void {
    for (let i = 0; i < times; i++) this.raft(id).tick();
  }
}

const ELECTION_TICKS = 10;

/** Only messages whose sender and receiver are both among `ids`. */
export function between(ids: readonly NodeId[]): (m: Message) => boolean {
  return (m) => ids.includes(m.from) && ids.includes(m.to);
}

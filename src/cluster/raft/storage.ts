import { assert } from "../../errors.ts";
import { type ConfState, EMPTY_SNAPSHOT, type Entry, type HardState, type Snapshot } from "./types.ts";

/**
 * Where a Raft node's persistent state lives: its hard state and its log. The core only reads it;
 * the caller writes what a Ready says, in the way of its implementation (MemoryStorage: setHardState
 * and append; DurableRaftLog: persist, which syncs).
 */
export interface RaftStorage {
  hardState(): HardState;
  /** What stands for the entries compacted away (index 0 when none were). */
  snapshot(): Snapshot;
  /** The index of the first entry held: the snapshot's index + 1. */
  firstIndex(): number;
  lastIndex(): number;
  /** The term of entry `index`, from the snapshot's index on (0 for index 0). */
  term(index: number): number;
  /** Entries [lo, hi). */
  entries(lo: number, hi: number): Entry[];
}

/**
 * A Raft log on disk, as the driver (RaftPersistence) and the member's checkpoints use it, whoever
 * keeps the files: DurableRaftLog (one group, its own files) or a group of a RaftLogEngine (many
 * groups in shared files, one fsync for all).
 */
export interface PersistentRaftLog extends RaftStorage {
  /** Writes a Ready's hard state and entries; synced before it resolves unless `sync` is false. */
  persist(hardState: HardState | undefined, entries: readonly Entry[], sync?: boolean): Promise<void>;
  /** The application applied up to `index` and summed it up in `data`: drop the entries it covers. */
  compact(index: number, data: Uint8Array, conf: ConfState): Promise<void>;
  /** A snapshot from the leader replaces the whole log. */
  installSnapshot(snapshot: Snapshot): Promise<void>;
  /** Waits for the calls made so far; later ones fail. */
  close(): Promise<void>;
}

/** The in-memory storage of the simulator; what survives a simulated crash. */
export class MemoryStorage implements RaftStorage {
  private state: HardState = { term: 0, vote: 0, commit: 0 };
  private snap: Snapshot = EMPTY_SNAPSHOT;
  /** Entries after the snapshot: log[0] is entry snap.index + 1. */
  private log: Entry[] = [];

  hardState(): HardState {
    return this.state;
  }

  snapshot(): Snapshot {
    return this.snap;
  }

  firstIndex(): number {
    return this.snap.index + 1;
  }

  lastIndex(): number {
    return this.snap.index + this.log.length;
  }

  term(index: number): number {
    if (index === this.snap.index) return this.snap.term;
    const entry = this.log[index - this.snap.index - 1];
    assert(entry !== undefined, () => `no entry at ${index} (held ${this.firstIndex()}..${this.lastIndex()})`);
    return entry.term;
  }

  entries(lo: number, hi: number): Entry[] {
    assert(
      lo >= this.firstIndex() && hi <= this.lastIndex() + 1 && lo <= hi,
      () => `entries [${lo}, ${hi}) outside [${this.firstIndex()}, ${this.lastIndex() + 1})`,
    );
    return this.log.slice(lo - this.snap.index - 1, hi - this.snap.index - 1);
  }

  setHardState(state: HardState): void {
    this.state = state;
  }

  /** Appends entries, first dropping any held entry at or after the first new index (a conflict). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(
      first > this.snap.index && first <= this.lastIndex() + 1,
      () => `append at ${first} outside ${this.firstIndex()}..${this.lastIndex() + 1}`,
    );
    this.log.length = first - this.snap.index - 1;
    this.log.push(...entries);
  }

  /** Drops the entries up to `index`, which the application has applied and summed up in `data`, with the members then. */
  compact(index: number, data: Uint8Array, conf: ConfState): void {
    assert(
      index > this.snap.index && index <= this.lastIndex(),
      () => `compact to ${index} outside ${this.firstIndex()}..${this.lastIndex()}`,
    );
    const term = this.term(index);
    this.log = this.log.slice(index - this.snap.index);
    this.snap = { index, term, data, conf };
  }

  /** Replaces the whole log with a snapshot received from the leader. */
  applySnapshot(snapshot: Snapshot): void {
    this.snap = snapshot;
    this.log = [];
  }
}

import { assert } from "../../errors.ts";
import type { Entry, HardState } from "./types.ts";

/**
 * Where a Raft node's persistent state lives: its hard state and its log. The core only reads it;
 * the caller writes what a Ready says, in the way of its implementation (MemoryStorage: setHardState
 * and append; DurableRaftLog: persist, which syncs).
 */
export interface RaftStorage {
  hardState(): HardState;
  /** The index of the first entry held (1 for a log never compacted). */
  firstIndex(): number;
  lastIndex(): number;
  /** The term of entry `index`; 0 for index 0 (before the log). */
  term(index: number): number;
  /** Entries [lo, hi). */
  entries(lo: number, hi: number): Entry[];
}

/** The in-memory storage of the simulator; what survives a simulated crash. */
export class MemoryStorage implements RaftStorage {
  private state: HardState = { term: 0, vote: 0, commit: 0 };
  private readonly log: Entry[] = [];

  hardState(): HardState {
    return this.state;
  }

  firstIndex(): number {
    return 1;
  }

  lastIndex(): number {
    return this.log.length;
  }

  term(index: number): number {
    if (index === 0) return 0;
    const entry = this.log[index - 1];
    assert(entry !== undefined, `no entry at ${index} (last ${this.log.length})`);
    return entry.term;
  }

  entries(lo: number, hi: number): Entry[] {
    assert(lo >= 1 && hi <= this.log.length + 1 && lo <= hi, `entries [${lo}, ${hi}) outside [1, ${this.log.length + 1})`);
    return this.log.slice(lo - 1, hi - 1);
  }

  setHardState(state: HardState): void {
    this.state = state;
  }

  /** Appends entries, first dropping any held entry at or after the first new index (a conflict). */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const first = entries[0]!.index;
    assert(first >= 1 && first <= this.log.length + 1, `append at ${first} leaves a gap after ${this.log.length}`);
    this.log.length = first - 1;
    this.log.push(...entries);
  }
}

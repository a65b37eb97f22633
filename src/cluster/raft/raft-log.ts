import { assert } from "../../errors.ts";
import type { RaftStorage } from "./storage.ts";
import type { Entry } from "./types.ts";

/**
 * A node's log as the core sees it: what storage holds (stable), then entries not yet persisted
 * (unstable), which may replace a suffix of storage after a conflict. Also the commit and applied
 * indexes. No I/O: the caller persists `unstable()` and reports it with `stableTo`.
 *
 *   storage  [1:t1 2:t1 3:t2]          unstable [3:t3 4:t3]     (entry 3 of term 2 is being replaced)
 *   lastIndex 4, term(3) = 3, term(2) = 1
 */
export class RaftLog {
  private pending: Entry[] = [];
  committed: number;
  applied = 0;

  constructor(private readonly storage: RaftStorage) {
    this.committed = storage.hardState().commit;
  }

  lastIndex(): number {
    return this.pending.length > 0 ? this.pending[this.pending.length - 1]!.index : this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** The term of entry `index`, or undefined when the log does not reach it. */
  term(index: number): number {
    const first = this.pending[0]?.index;
    if (first !== undefined && index >= first) {
      const entry = this.pending[index - first];
      assert(entry !== undefined, `no entry at ${index} (last ${this.lastIndex()})`);
      return entry.term;
    }
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return index <= this.lastIndex() && this.term(index) === term;
  }

  /** Whether a log ending at (lastIndex, lastTerm) is at least as up to date as this one (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries [lo, hi). */
  slice(lo: number, hi: number): Entry[] {
    if (lo >= hi) return [];
    const first = this.pending[0]?.index ?? this.storage.lastIndex() + 1;
    const stable = lo < first ? this.storage.entries(lo, Math.min(hi, first)) : [];
    const unstable = hi > first ? this.pending.slice(Math.max(lo, first) - first, hi - first) : [];
    return [...stable, ...unstable];
  }

  /**
   * Appends the leader's entries after (prevIndex, prevTerm) if this log holds that entry; returns
   * the last index now known to match the leader's, or undefined to reject. Entries already held
   * with the same term are kept, so a duplicated or reordered old append truncates nothing.
   */
  maybeAppend(prevIndex: number, prevTerm: number, entries: readonly Entry[]): number | undefined {
    if (!this.matchTerm(prevIndex, prevTerm)) return undefined;
    const conflict = entries.findIndex((entry) => !this.matchTerm(entry.index, entry.term));
    if (conflict !== -1) {
      const from = entries[conflict]!.index;
      assert(from > this.committed, `an append conflicts at ${from}, at or below the commit index ${this.committed}`);
      this.append(entries.slice(conflict));
    }
    return prevIndex + entries.length;
  }

  /** Adds entries at the end, or over a conflicting suffix. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const from = entries[0]!.index;
    assert(from <= this.lastIndex() + 1, `append at ${from} leaves a gap after ${this.lastIndex()}`);
    const first = this.pending[0]?.index;
    if (first !== undefined && from >= first) this.pending = [...this.pending.slice(0, from - first), ...entries];
    else this.pending = [...entries];
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term`: where a follower's log can first agree with
   * a leader that rejected or was rejected at (index, term) — the fast back-off of §5.3.
   */
  findConflictByTerm(index: number, term: number): number {
    let probe = Math.min(index, this.lastIndex());
    while (probe > 0 && this.term(probe) > term) probe--;
    return probe;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), `commit ${index} beyond the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  unstable(): Entry[] {
    return [...this.pending];
  }

  /** The caller persisted entries up to (index, term): they are storage's now. */
  stableTo(index: number, term: number): void {
    const first = this.pending[0]?.index;
    if (first === undefined || index < first || !this.matchTerm(index, term)) return;
    this.pending = this.pending.slice(index - first + 1);
  }

  /** Committed entries not yet handed to the state machine. */
  toApply(): Entry[] {
    return this.slice(this.applied + 1, this.committed + 1);
  }

  appliedTo(index: number): void {
    assert(index <= this.committed, `applied ${index} beyond the commit index ${this.committed}`);
    this.applied = Math.max(this.applied, index);
  }
}

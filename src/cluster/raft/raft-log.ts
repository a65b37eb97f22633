import { assert } from "../../errors.ts";
import type { RaftStorage } from "./storage.ts";
import type { Entry, Snapshot } from "./types.ts";

/**
 * A node's log as the core sees it: what storage holds (stable), then entries not yet persisted
 * (unstable), which may replace a suffix of storage after a conflict. Also the commit and applied
 * indexes. No I/O: the caller persists `unstable()` and reports it with `stableTo`.
 *
 *   storage  [1:t1 2:t1 3:t2]          unstable [3:t3 4:t3]     (entry 3 of term 2 is being replaced)
 *   lastIndex 4, term(3) = 3, term(2) = 1
 *
 * A snapshot received from the leader (`restore`) replaces everything until the caller has installed
 * it: then the log is the snapshot, and entries after it are unstable.
 */
export class RaftLog {
  private pending: Entry[] = [];
  /** A snapshot from the leader that the caller has not installed yet. */
  pendingSnapshot: Snapshot | undefined;
  committed: number;
  applied: number;

  constructor(private readonly storage: RaftStorage) {
    // The state machine starts from the storage's snapshot: everything in it is applied.
    this.applied = storage.snapshot().index;
    this.committed = Math.max(storage.hardState().commit, this.applied);
  }

  /** The index the log starts after: what a snapshot stands for. */
  snapshotIndex(): number {
    return this.pendingSnapshot?.index ?? this.storage.snapshot().index;
  }

  lastIndex(): number {
    if (this.pending.length > 0) return this.pending[this.pending.length - 1]!.index;
    return this.pendingSnapshot?.index ?? this.storage.lastIndex();
  }

  lastTerm(): number {
    return this.term(this.lastIndex());
  }

  /** The term of entry `index`, from the snapshot's index to the last index. */
  term(index: number): number {
    const first = this.pending[0]?.index;
    if (first !== undefined && index >= first) {
      const entry = this.pending[index - first];
      assert(entry !== undefined, () => `no entry at ${index} (last ${this.lastIndex()})`);
      return entry.term;
    }
    const pending = this.pendingSnapshot;
    if (pending) {
      assert(index === pending.index, () => `no entry at ${index}: the log restarts at snapshot ${pending.index}`);
      return pending.term;
    }
    return this.storage.term(index);
  }

  matchTerm(index: number, term: number): boolean {
    return index >= this.snapshotIndex() && index <= this.lastIndex() && this.term(index) === term;
  }

  /** Whether a log ending at (lastIndex, lastTerm) is at least as up to date as this one (§5.4.1). */
  isUpToDate(lastIndex: number, lastTerm: number): boolean {
    const myTerm = this.lastTerm();
    return lastTerm > myTerm || (lastTerm === myTerm && lastIndex >= this.lastIndex());
  }

  /** Entries [lo, hi). */
  slice(lo: number, hi: number): Entry[] {
    if (lo >= hi) return [];
    assert(
      lo > this.snapshotIndex(),
      () => `entries from ${lo} are compacted into the snapshot at ${this.snapshotIndex()}`,
    );
    const first = this.pending[0]?.index ?? this.lastIndex() + 1;
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
      assert(
        from > this.committed,
        () => `an append conflicts at ${from}, at or below the commit index ${this.committed}`,
      );
      this.append(entries.slice(conflict));
    }
    return prevIndex + entries.length;
  }

  /** Adds entries at the end, or over a conflicting suffix. */
  append(entries: readonly Entry[]): void {
    if (entries.length === 0) return;
    const from = entries[0]!.index;
    assert(from <= this.lastIndex() + 1, () => `append at ${from} leaves a gap after ${this.lastIndex()}`);
    assert(from > this.snapshotIndex(), () => `append at ${from}, inside the snapshot at ${this.snapshotIndex()}`);
    const first = this.pending[0]?.index;
    // At the end (every proposal of a leader): in place. `pending` is never handed out (unstable()
    // copies), so nothing else sees it change; copying it here made a turn of n proposals cost n².
    if (first !== undefined && from === first + this.pending.length)
      for (const entry of entries) this.pending.push(entry);
    else if (first !== undefined && from >= first) this.pending = [...this.pending.slice(0, from - first), ...entries];
    else this.pending = [...entries];
  }

  /** The leader's snapshot replaces this log: nothing of it is needed any more. */
  restore(snapshot: Snapshot): void {
    assert(
      snapshot.index > this.committed,
      () => `restore snapshot ${snapshot.index} at or below the commit index ${this.committed}`,
    );
    this.pending = [];
    this.pendingSnapshot = snapshot;
    this.committed = snapshot.index;
  }

  /** The caller installed the snapshot in storage and in the state machine. */
  snapshotInstalled(index: number): void {
    if (this.pendingSnapshot?.index !== index) return;
    this.pendingSnapshot = undefined;
    this.applied = Math.max(this.applied, index);
  }

  /**
   * The largest index ≤ `index` whose term is ≤ `term`: where a follower's log can first agree with
   * a leader that rejected or was rejected at (index, term) — the fast back-off of §5.3.
   */
  findConflictByTerm(index: number, term: number): number {
    let probe = Math.min(index, this.lastIndex());
    const floor = this.snapshotIndex();
    if (probe < floor) return probe; // below the snapshot nothing is known: the leader sends the snapshot
    while (probe > floor && this.term(probe) > term) probe--;
    return probe;
  }

  commitTo(index: number): void {
    if (index <= this.committed) return;
    assert(index <= this.lastIndex(), () => `commit ${index} beyond the last index ${this.lastIndex()}`);
    this.committed = index;
  }

  unstable(): Entry[] {
    return [...this.pending];
  }

  /** Whether entries wait to be persisted (without copying them, as unstable() does). */
  hasUnstable(): boolean {
    return this.pending.length > 0;
  }

  /** The caller persisted entries up to (index, term): they are storage's now. */
  stableTo(index: number, term: number): void {
    const first = this.pending[0]?.index;
    if (first === undefined || index < first || !this.matchTerm(index, term)) return;
    this.pending = this.pending.slice(index - first + 1);
  }

  /** Committed entries not yet handed to the state machine (none while a snapshot waits to be installed). */
  toApply(): Entry[] {
    if (this.pendingSnapshot) return [];
    return this.slice(this.applied + 1, this.committed + 1);
  }

  appliedTo(index: number): void {
    assert(index <= this.committed, () => `applied ${index} beyond the commit index ${this.committed}`);
    this.applied = Math.max(this.applied, index);
  }
}

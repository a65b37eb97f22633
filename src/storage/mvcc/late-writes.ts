/**
 * The writes committed late (WriteView.applyLate) while a snapshot was open, numbered in the
 * order they were applied: what a snapshot's dump (Snapshot.chains) leaves out, so that a
 * checkpoint holds the state at the moment it was pinned even when a late commit at a revision
 * at or below its own lands while it is copied. The log the checkpoint names a position in then
 * applies that commit once more, onto a state without it.
 *
 *   snapshot A opened          sequence 0
 *   late put k at 30           k@30 numbered 0         (A holds GC at its compacted revision, below 30)
 *   snapshot B opened          sequence 1
 *   late put n at 40           n@40 numbered 1
 *   since(0) → k:{30}, n:{40} (A's dump leaves both out);  since(1) → n:{40}
 *   every snapshot released    clear(): nothing is left out
 *
 * Held only while a snapshot is open: as many entries as late writes during the longest-lived one.
 */
export class LateWrites {
  private readonly writes: { key: string; revision: number }[] = [];
  private first = 0;

  /** The number the next late write takes: a snapshot opened now leaves out those from it on. */
  get sequence(): number {
    return this.first + this.writes.length;
  }

  record(key: string, revision: number): void {
    this.writes.push({ key, revision });
  }

  /** The revisions written late to each key from number `from` on; undefined when none were. */
  since(from: number): Map<string, Set<number>> | undefined {
    const start = Math.max(0, from - this.first);
    if (start >= this.writes.length) return undefined;
    const byKey = new Map<string, Set<number>>();
    for (let i = start; i < this.writes.length; i++) {
      const { key, revision } = this.writes[i]!;
      let revisions = byKey.get(key);
      if (revisions === undefined) byKey.set(key, (revisions = new Set()));
      revisions.add(revision);
    }
    return byKey;
  }

  /** Forgets every write (no snapshot is open); the numbering goes on. */
  clear(): void {
    this.first += this.writes.length;
    this.writes.length = 0;
  }
}

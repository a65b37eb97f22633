/**
 * Which segments of a RaftLogEngine the groups still need for their entries: per segment, per
 * group, the highest entry index the group wrote there. Hard states and snapshot records are not
 * counted: each rotation writes every live group's again at the start of the new segment, so
 * those in older segments are superseded once it is synced.
 *
 *   segment 3: group 7 wrote 1..40, group 9 wrote 1..5      {7 → 40, 9 → 5}
 *   segment 4: group 7 wrote 41..60                         {7 → 60}
 *   group 7 compacts to 45, group 9 to 5: segment 3 is no longer needed, segment 4 still is.
 *
 * Only a prefix of the segments is ever removed: a removal record or a leader's snapshot voids a
 * group's records before it, and must not go while any of those stay behind.
 */
export class SegmentUsage {
  /** By sequence, in ascending order (segments are added in that order). */
  private readonly bySegment = new Map<number, Map<number, number>>();

  add(sequence: number): void {
    if (!this.bySegment.has(sequence)) this.bySegment.set(sequence, new Map());
  }

  noteEntries(sequence: number, group: number, lastIndex: number): void {
    const groups = this.bySegment.get(sequence);
    if (groups === undefined) return;
    groups.set(group, Math.max(groups.get(group) ?? 0, lastIndex));
  }

  /** A record voided everything `group` wrote before it (a leader's snapshot, or its removal). */
  forget(group: number): void {
    for (const groups of this.bySegment.values()) groups.delete(group);
  }

  /**
   * The oldest segments before `current` that no group needs: in each, every group's entries are at
   * or below its snapshot's index (`snapshotIndex`; undefined for a group not held, which keeps the
   * segment: its removal is not yet durable).
   */
  removablePrefix(current: number, snapshotIndex: (group: number) => number | undefined): number[] {
    const removable: number[] = [];
    for (const [sequence, groups] of this.bySegment) {
      if (sequence >= current) break;
      const needed = [...groups].some(([group, lastIndex]) => {
        const covered = snapshotIndex(group);
        return covered === undefined || lastIndex > covered;
      });
      if (needed) break;
      removable.push(sequence);
    }
    return removable;
  }

  drop(sequence: number): void {
    this.bySegment.delete(sequence);
  }
}

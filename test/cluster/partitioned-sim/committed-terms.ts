import type { RaftStorage } from "../../../src/cluster/raft/storage.ts";

/**
 * Raft's safety, checked after every event of a run: an entry committed at an index has the same
 * term on every replica that holds it committed, whenever it is looked at (the term names the
 * entry: Log Matching). Two leaders committing different entries at one index, or a replica
 * restarted on a log that lost or changed a committed entry, fail here at the event that did it,
 * not only later as a store that differs (or a group that never settles).
 *
 * Each replica is looked at from where it was last looked at (or its log's snapshot) up to the
 * commit index its log holds (its hard state, written with its entries: the Raft core may know a
 * later commit over entries it has yet to write, where the log still holds the ones they replace);
 * the first term seen at an index is the one every other must have.
 */
export class CommittedTerms {
  /** By group, by index: the term first seen committed there, and where. */
  private readonly terms = new Map<number, Map<number, { term: number; where: string }>>();
  /** By replica (its running object): the index it was checked up to. */
  private readonly checked = new WeakMap<object, number>();

  /** Checks `replica` of `group` (on `where`) by its log. Why it breaks the rule, or undefined. */
  check(group: number, replica: object, where: string, log: RaftStorage): string | undefined {
    const from = Math.max(this.checked.get(replica) ?? 0, log.snapshot().index) + 1;
    const to = Math.min(log.hardState().commit, log.lastIndex());
    let terms = this.terms.get(group);
    if (terms === undefined) this.terms.set(group, (terms = new Map()));
    for (let index = from; index <= to; index++) {
      const term = log.term(index);
      const known = terms.get(index);
      if (known === undefined) terms.set(index, { term, where });
      else if (known.term !== term)
        return `group ${group}: ${where} holds an entry of term ${term} committed at index ${index}, ${known.where} one of term ${known.term}`;
    }
    if (to >= from) this.checked.set(replica, to);
    return undefined;
  }
}

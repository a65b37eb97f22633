import type { Entry, KeyRange, SortedRun } from "./entry.ts";

/** What a range read (a scan, a dump, the changes a watch catches up from) walks: entries in internal-key order. */
export interface RangeRun {
  entries(range: KeyRange, reverse?: boolean): Iterator<Entry>;
  /** The newest revision of any entry in the run, when known: a reader of changes after it skips the run. */
  readonly maxRevision?: number;
}

/** A run as the store reads it: a memtable, a frozen memtable or a table. */
export interface StoredRun extends SortedRun, RangeRun {}

/**
 * What the levels give the store: the runs below its memtables. For any one key, every version in
 * a run given earlier must be at least as new as every version of the key in a run given later (a
 * flush or compaction in progress may hold the same entry twice; the newer run's copy wins), so that
 * a point read can stop at the first run that holds a version at or below its revision.
 */
export interface RunSource {
  /** The runs that may hold versions of `key`, newest first: a point read asks them in this order. */
  runsFor(key: Uint8Array): Iterable<StoredRun>;
  /** The runs that may hold keys of `range`, newest first: a scan merges them. */
  runsOverlapping(range: KeyRange): Iterable<RangeRun>;
  /** Entries the runs hold in all (the store's version count). */
  readonly entryCount: number;
}

/** No levels: every run the store reads is a memtable (until tables plug in). */
export const NO_LEVELS: RunSource = {
  runsFor: () => [],
  runsOverlapping: () => [],
  entryCount: 0,
};

import type { Entry, KeyRange } from "./entry.ts";
import { mergeRuns } from "./merge.ts";
import type { RangeRun } from "./runs.ts";
import type { TableReader } from "./table/reader.ts";

/**
 * One level of tables read as a single run by a range read: its guards in key order (they hold
 * disjoint keys), each guard's tables merged only when the walk reaches it. A scan that stops after
 * a page so opens the tables of the guards it reaches, not those of every guard after its start:
 * merging every table of the range at once read the first block of each (LevelDB's level iterator
 * walks a level's files one after the other for the same reason).
 *
 *   guards  ∅: [#5]   "g": [#7 #4]   "p": [#3]
 *   entries from "h"   → #7 and #4 merged (their entries at or after "h"), then #3 once they are done;
 *                        #5 is never opened
 */
export class LevelRun implements RangeRun {
  readonly maxRevision: number;

  /** `guards`: each guard's tables (newest first) in the guards' key order, none empty. */
  constructor(private readonly guards: readonly (readonly TableReader[])[]) {
    let newest = 0;
    for (const tables of guards) for (const table of tables) newest = Math.max(newest, table.maxRevision);
    this.maxRevision = newest;
  }

  *entries(range: KeyRange, reverse = false): Generator<Entry> {
    const { guards } = this;
    for (let i = 0; i < guards.length; i++) {
      const tables = guards[reverse ? guards.length - 1 - i : i]!;
      if (tables.length === 1) yield* tables[0]!.entries(range, reverse);
      else
        yield* mergeRuns(
          tables.map((table) => table.entries(range, reverse)),
          reverse,
        );
    }
  }
}

import { assert } from "../../../errors.ts";
import { compareEntries, compareKeyBytes, type Entry } from "../entry.ts";

/**
 * The versions a compaction keeps, from its merged input in internal-key order. Nobody reads below
 * the GC floor except as "the newest version at or below it", so per key it keeps every version
 * above the floor and the newest one at or below it — and drops that one too when it is a
 * tombstone and nothing older lies below (`bottom`): a read at or above the floor then finds no
 * version, as the tombstone said.
 *
 *   versions of k: 9:v3  7:∅  4:v1  2:v0      floor 6
 *   kept:          9:v3  7:∅  4:v1            (2:v0 is shadowed by 4:v1, which is ≤ the floor)
 *   floor 8:       9:v3  7:∅                  bottom: 9:v3 only
 */
export function* retainedVersions(entries: Iterator<Entry>, floor: number, bottom: boolean): Generator<Entry> {
  let previous: Entry | undefined;
  let keptAtOrBelowFloor = false;
  for (let next = entries.next(); !next.done; next = entries.next()) {
    const entry = next.value;
    assert(previous === undefined || compareEntries(previous, entry) < 0, "compaction input out of internal-key order");
    if (previous === undefined || compareKeyBytes(previous.key, entry.key) !== 0) keptAtOrBelowFloor = false;
    previous = entry;
    if (entry.revision > floor) yield entry;
    else if (!keptAtOrBelowFloor) {
      keptAtOrBelowFloor = true;
      if (!(bottom && entry.value === null)) yield entry;
    }
  }
}

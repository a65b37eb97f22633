import { ScanPageCutter, toRecord } from "../mvcc/range-reads.ts";
import type { ChangePage, HistoryChange, KeyChain, ScanOptions, ScanPage } from "../mvcc/store-types.ts";
import type { Entry, KeyRange } from "./entry.ts";
import { boundBytes, keyAfter, keyText } from "./key-bytes.ts";
import { mergeRuns } from "./merge.ts";
import type { RangeRun } from "./runs.ts";
import { byKey, type KeyVersions, retainedAbove, toVersion, visibleAt } from "./visible.ts";

/**
 * Reads over a range of runs (memtables and tables, newest first): scan pages, checkpoint dumps,
 * and the history of changes a watch catches up from. Each merges the runs (merge.ts) and takes
 * what it needs from each key's versions; each call does bounded work (a page) and keeps no state.
 */

/** The runs of a range, newest first. */
export type RunsOf = (range: KeyRange) => readonly RangeRun[];

function keysOf(runs: readonly RangeRun[], range: KeyRange, reverse = false): Generator<KeyVersions> {
  return byKey(
    mergeRuns(
      runs.map((run) => run.entries(range, reverse)),
      reverse,
    ),
    reverse,
  );
}

/** A bound's or a key's bytes (a bound may end in a lone surrogate: boundBytes). */
const bytesOf = (key: string | undefined) => (key === undefined ? undefined : boundBytes(key));

/** Live keys of a range at a revision, a page at a time (see ScanOptions), as the memory engine pages them. */
export function scanRuns(
  runsOf: RunsOf,
  { start, end, after, reverse = false, revision, ...paging }: ScanOptions,
): ScanPage {
  // Continuing after a key: forward from the first key after it, backward from below it.
  const from = bytesOf(after);
  const range: KeyRange = reverse
    ? { start: bytesOf(start), end: from ?? bytesOf(end) }
    : { start: from === undefined ? bytesOf(start) : keyAfter(from), end: bytesOf(end) };
  const page = new ScanPageCutter(paging, keyText);
  for (const { key, versions } of keysOf(runsOf(range), range, reverse)) {
    const entry = visibleAt(versions, revision);
    const live = entry !== undefined && entry.value !== null;
    if (!page.visit(key, live ? toRecord(keyText(key), entry) : undefined)) break;
  }
  return page.page();
}

/**
 * Every version up to `revision` of the keys after `after` that a reader at or above `floor` may
 * still see: what a checkpoint holds (versions compaction has not dropped yet are left out).
 */
export function dumpRuns(
  runsOf: RunsOf,
  { after, limit, revision }: { after?: string; limit: number; revision: number },
  floor: number,
): KeyChain[] {
  const from = bytesOf(after);
  const range: KeyRange = { start: from === undefined ? undefined : keyAfter(from) };
  const out: KeyChain[] = [];
  for (const { key, versions } of keysOf(runsOf(range), range)) {
    if (out.length === limit) break;
    const kept = retainedAbove(
      versions.filter((entry) => entry.revision <= revision),
      floor,
    );
    if (kept.length > 0) out.push({ key: keyText(key), versions: kept.map(toVersion).reverse() });
  }
  return out;
}

/**
 * The changes after revision `after` to keys of [start, end), by revision (key order within one),
 * whole revisions only, about `limit` of them; `through` is the last revision the page covers.
 * `runsOf` may leave out runs that hold nothing after `after`; so the value before a key's first
 * change is read with `previousAt` (the store's point read of the key, text and bytes, at `after`,
 * readable by the contract).
 */
export function changesInRuns(
  runsOf: RunsOf,
  { start, end, after, limit }: { start?: string; end?: string; after: number; limit: number },
  current: number,
  previousAt: (key: string, bytes: Uint8Array, revision: number) => Entry | undefined,
): ChangePage {
  if (after >= current) return { changes: [], through: current };
  const range: KeyRange = { start: bytesOf(start), end: bytesOf(end) };
  let found: HistoryChange[] = [];
  let through = current;
  for (const { key, versions } of keysOf(runsOf(range), range)) {
    let first = 0;
    while (first < versions.length && versions[first]!.revision > after) first++;
    const text = keyText(key);
    for (let i = first - 1; i >= 0; i--) {
      const { value, revision, createRevision, version } = versions[i]!;
      if (revision > through) break;
      const before = i === first - 1 ? previousAt(text, key, after) : versions[i + 1];
      found.push({ key: text, value, revision, previous: before?.value ?? undefined, createRevision, version });
    }
    // Bounded memory: once twice a page is found, only the oldest page can still be answered.
    if (found.length > 2 * limit) ({ found, through } = oldestRevisions(found, limit));
  }
  if (found.length > limit) ({ found, through } = oldestRevisions(found, limit));
  else found.sort((a, b) => a.revision - b.revision);
  return { changes: found, through };
}

/** The changes of the oldest revisions holding at least `limit` of them, and the last such revision. */
function oldestRevisions(found: HistoryChange[], limit: number): { found: HistoryChange[]; through: number } {
  const sorted = found.sort((a, b) => a.revision - b.revision); // stable: key order within a revision
  const through = sorted[limit - 1]!.revision;
  return { found: sorted.filter((change) => change.revision <= through), through };
}

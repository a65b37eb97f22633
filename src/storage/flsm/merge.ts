import { compareEntries, type Entry } from "./entry.ts";

/**
 * Merges sorted runs into one stream in internal-key order (or its reverse): the read path of a
 * scan and the input of a compaction. `sources` are ordered newest run first; when two runs hold
 * the same (key, revision) — a run and the table it is being flushed or compacted into — the newer
 * run's entry is kept and the other dropped, so a reader never sees a version twice.
 */
export function* mergeRuns(sources: readonly Iterator<Entry>[], reverse = false): Generator<Entry> {
  const order = reverse ? (a: Entry, b: Entry) => compareEntries(b, a) : compareEntries;
  // A binary min-heap of the sources' current entries; ties go to the lower source index (newer run).
  const heap: { entry: Entry; source: number }[] = [];
  const at = (i: number) => heap[i] as (typeof heap)[number];
  const before = (i: number, j: number): boolean => {
    const byKey = order(at(i).entry, at(j).entry);
    return byKey < 0 || (byKey === 0 && at(i).source < at(j).source);
  };
  const swap = (i: number, j: number): void => {
    const held = at(i);
    heap[i] = at(j);
    heap[j] = held;
  };
  const siftDown = (start: number): void => {
    let i = start;
    for (;;) {
      const left = 2 * i + 1;
      const right = left + 1;
      let least = i;
      if (left < heap.length && before(left, least)) least = left;
      if (right < heap.length && before(right, least)) least = right;
      if (least === i) return;
      swap(i, least);
      i = least;
    }
  };
  const push = (entry: Entry, source: number): void => {
    heap.push({ entry, source });
    let i = heap.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (!before(i, parent)) return;
      swap(i, parent);
      i = parent;
    }
  };
  sources.forEach((iterator, source) => {
    const first = iterator.next();
    if (!first.done) push(first.value, source);
  });
  let last: Entry | undefined;
  while (heap.length > 0) {
    const top = at(0);
    const next = (sources[top.source] as Iterator<Entry>).next();
    if (next.done) {
      const tail = heap.pop() as (typeof heap)[number];
      if (heap.length > 0) heap[0] = tail;
    } else heap[0] = { entry: next.value, source: top.source };
    if (heap.length > 0) siftDown(0);
    if (last === undefined || compareEntries(last, top.entry) !== 0) yield top.entry;
    last = top.entry;
  }
}

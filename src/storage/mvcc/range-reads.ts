import { type KeyRecord, recordBytes } from "../ops.ts";
import { fromIndexKey, toIndexKey } from "./key-order.ts";
import type { ChangePage, HistoryChange, KeyChain, ScanOptions, ScanPage } from "./store-types.ts";
import { NONE, type Version, type VersionChains } from "./version-chain.ts";

/**
 * Reads over a range of the ordered index: scan pages, checkpoint dumps, and the history of changes
 * a watch catches up from. Each call does bounded work (a page, a slice) and keeps no state.
 */

/** A key's state from its visible version. */
export function toRecord(key: string, version: Version): KeyRecord {
  return {
    key,
    value: version.value ?? undefined,
    modRevision: version.revision,
    createRevision: version.createRevision,
    version: version.version,
    ...(version.expiresAtMs === undefined ? {} : { expiresAtMs: version.expiresAtMs }),
  };
}

/**
 * Cuts a scan page from the keys of a range, visited in scan order (see ScanOptions): at most
 * `limit` live records and `visitMax` keys visited, dead ones included, and about `bytesMax` of keys
 * and values (always at least one record). Shared by every engine, so that they page alike. `K` is
 * an engine's own form of a key; `textOf` makes the key a page continues after, only when it does.
 */
export class ScanPageCutter<K> {
  private readonly records: KeyRecord[] = [];
  private readonly limit: number;
  private readonly visitMax: number;
  private readonly bytesMax: number;
  private visited = 0;
  private bytes = 0;
  private lastVisited: K | undefined;
  private next: string | undefined;

  constructor(
    options: Pick<ScanOptions, "limit" | "visitMax" | "bytesMax">,
    private readonly textOf: (key: K) => string,
  ) {
    this.limit = options.limit;
    this.visitMax = options.visitMax ?? options.limit * 4 + 1_000;
    this.bytesMax = options.bytesMax ?? Infinity;
  }

  /** Takes the next key and its state (undefined: none at the scan's revision); false once the page is full. */
  visit(key: K, record: KeyRecord | undefined): boolean {
    // A full page, or enough keys visited (dead ones count too): the caller continues from here.
    if (this.records.length === this.limit || this.visited === this.visitMax) return this.cut();
    if (record !== undefined) {
      const size = recordBytes(record);
      // Over the byte budget: end the page before this record; the next page starts with it.
      if (this.records.length > 0 && this.bytes + size > this.bytesMax) return this.cut();
      this.bytes += size;
      this.records.push(record);
    }
    this.visited++;
    this.lastVisited = key;
    return true;
  }

  page(): ScanPage {
    return this.next === undefined ? { records: this.records } : { records: this.records, next: this.next };
  }

  private cut(): false {
    this.next = this.textOf(this.lastVisited as K);
    return false;
  }
}

/** Live keys of a range at a revision, a page at a time (see ScanOptions). */
export function scanRange(
  chains: VersionChains,
  { start, end, after, reverse = false, revision, ...paging }: ScanOptions,
): ScanPage {
  const low = start === undefined ? undefined : toIndexKey(start);
  const high = end === undefined ? undefined : toIndexKey(end);
  const from = after === undefined ? undefined : toIndexKey(after);
  const page = new ScanPageCutter(paging, fromIndexKey);
  const { index } = chains;
  // Forward: from `after` (exclusive) or `start`; backward: from `after` (exclusive) or below `end`.
  for (const id of reverse ? index.backward(from ?? high) : index.forward(from ?? low)) {
    const indexKey = index.key(id);
    if (!reverse && indexKey === from) continue;
    if (reverse ? low !== undefined && indexKey < low : high !== undefined && indexKey >= high) break;
    const slot = chains.versionAt(id, revision);
    const live = slot !== NONE && !chains.isTombstone(slot);
    if (!page.visit(indexKey, live ? toRecord(fromIndexKey(indexKey), chains.version(slot)) : undefined)) break;
  }
  return page.page();
}

/** Every retained version up to `revision` of the keys after `after`: what a checkpoint holds. */
export function dumpChains(
  chains: VersionChains,
  { after, limit, revision }: { after?: string; limit: number; revision: number },
): KeyChain[] {
  const out: KeyChain[] = [];
  const start = after === undefined ? undefined : toIndexKey(after);
  for (const id of chains.index.forward(start)) {
    if (out.length === limit) break;
    const indexKey = chains.index.key(id);
    if (indexKey === start) continue;
    const versions = chains
      .versions(id)
      .flatMap((slot) => (chains.revision(slot) <= revision ? [chains.version(slot)] : []));
    if (versions.length > 0) out.push({ key: fromIndexKey(indexKey), versions });
  }
  return out;
}

/**
 * The changes after revision `after` in [start, end), in revision order (key order within one),
 * whole revisions only, about `limit` of them; `through` is the last revision the page covers.
 */
export function changesSince(
  chains: VersionChains,
  { start, end, after, limit }: { start?: string; end?: string; after: number; limit: number },
  current: number,
): ChangePage {
  let through = current;
  let found: HistoryChange[] = [];
  // Keeps the oldest `limit` changes (whole revisions) of what was found; later ones come on the next page.
  const cut = () => {
    found.sort((a, b) => a.revision - b.revision); // stable: key order within a revision
    through = found[limit - 1]!.revision;
    found = found.filter((change) => change.revision <= through);
  };
  if (after >= through) return { changes: found, through };
  const high = end === undefined ? undefined : toIndexKey(end);
  for (const id of chains.index.forward(start === undefined ? undefined : toIndexKey(start))) {
    const indexKey = chains.index.key(id);
    if (high !== undefined && indexKey >= high) break;
    const slots = chains.versions(id);
    let first = slots.length;
    while (first > 0 && chains.revision(slots[first - 1]!) > after) first--;
    // The version before each change is its previous value: retained, since `after` is readable.
    for (let i = first; i < slots.length && chains.revision(slots[i]!) <= through; i++) {
      const version = chains.version(slots[i]!);
      found.push({
        key: fromIndexKey(indexKey),
        value: version.value,
        revision: version.revision,
        previous: i > 0 ? (chains.value(slots[i - 1]!) ?? undefined) : undefined,
        createRevision: version.createRevision,
        version: version.version,
      });
    }
    if (found.length > 2 * limit) cut();
  }
  if (found.length > limit) cut();
  else found.sort((a, b) => a.revision - b.revision);
  return { changes: found, through };
}

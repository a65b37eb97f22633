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

/** Live keys of a range at a revision, a page at a time (see ScanOptions). */
export function scanRange(
  chains: VersionChains,
  {
    start,
    end,
    after,
    limit,
    reverse = false,
    revision,
    visitMax = limit * 4 + 1_000,
    bytesMax = Infinity,
  }: ScanOptions,
): ScanPage {
  const low = start === undefined ? undefined : toIndexKey(start);
  const high = end === undefined ? undefined : toIndexKey(end);
  const from = after === undefined ? undefined : toIndexKey(after);
  const records: KeyRecord[] = [];
  let visited = 0;
  let bytes = 0;
  let lastVisited: string | undefined;
  // Forward: from `after` (exclusive) or `start`; backward: from `after` (exclusive) or below `end`.
  const { index } = chains;
  for (const id of reverse ? index.backward(from ?? high) : index.forward(from ?? low)) {
    const indexKey = index.key(id);
    if (!reverse && indexKey === from) continue;
    if (reverse ? low !== undefined && indexKey < low : high !== undefined && indexKey >= high) return { records };
    // A full page, or enough keys visited (dead ones count too): the caller continues from here.
    if (records.length === limit || visited === visitMax) return { records, next: fromIndexKey(lastVisited!) };
    const slot = chains.versionAt(id, revision);
    if (slot !== NONE && !chains.isTombstone(slot)) {
      const record = toRecord(fromIndexKey(indexKey), chains.version(slot));
      const size = recordBytes(record);
      // Over the byte budget: end the page before this record; the next page starts with it.
      if (records.length > 0 && bytes + size > bytesMax) return { records, next: fromIndexKey(lastVisited!) };
      bytes += size;
      records.push(record);
    }
    visited++;
    lastVisited = indexKey;
  }
  return { records };
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

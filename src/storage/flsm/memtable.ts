import { assert } from "../../errors.ts";
import type { Version } from "../mvcc/version-chain.ts";
import type { Entry, KeyRange, SortedRun } from "./entry.ts";
import { keyBytes, keyText, sortKey } from "./key-bytes.ts";
import { KeyTree } from "./key-tree.ts";

/**
 * Heap bytes a version and a key cost beside their bytes (the entry object, its value's typed
 * array, the tree's slot), measured by scripts/bench-memtable.ts: what `bytes` adds up, so that a
 * memtable of `--memtable-bytes` takes about that much memory.
 */
export const ENTRY_OVERHEAD_BYTES = 150;
export const KEY_OVERHEAD_BYTES = 360;

/** One key's versions in the memtable, oldest first (a write appends). */
interface KeyVersions {
  readonly key: Uint8Array;
  readonly versions: Entry[];
}

const NO_VERSIONS: readonly Entry[] = [];

/**
 * The newest versions, in memory: a SortedRun that accepts writes, until `freeze()` makes it
 * immutable (what a flush writes to a table). Each key's versions are found by the key's text in a
 * hash map (point reads and writes: no conversion, no comparison of keys) and in key order in a B+
 * tree (key-tree.ts), which only a new key costs an insert in; walks see the entries in internal-key
 * order like any run. Keys are strings here, as the store's API gives them, and bytes in entries.
 *
 *   add a@3 "x", add b@4 "y", add a@5 ∅      entries: (a,5,∅) (a,3,"x") (b,4,"y")
 *   get(a, 4) → (a,3,"x");  get(a, 5) → (a,5,∅): the tombstone (the key is deleted at 5)
 *   compact(a, floor 5)                       (a,3) is shadowed by (a,5) ≤ 5: dropped; the tombstone
 *                                             too when no older run may hold a version of a
 *   freeze()                                  add throws from now on
 */
export class Memtable implements SortedRun {
  private readonly tree = new KeyTree<KeyVersions>();
  private heldBytes = 0;
  private held = 0;
  private newestRevision = 0;
  private isFrozen = false;

  private readonly byText = new Map<string, KeyVersions>();

  /** Adds `version` of `key` as the key's newest here (revisions only grow); `bytes`, when given, are the key's UTF-8 bytes. */
  add(key: string, version: Version, keyBytesGiven?: Uint8Array): Entry {
    assert(!this.isFrozen, "a frozen memtable takes no writes");
    let slot = this.byText.get(key);
    if (slot === undefined) {
      const bytes = keyBytesGiven ?? keyBytes(key);
      slot = { key: bytes, versions: [] };
      this.byText.set(key, slot);
      this.tree.upsert(sortKey(bytes), () => slot!);
      this.heldBytes += bytes.byteLength + KEY_OVERHEAD_BYTES;
    }
    const last = slot.versions.at(-1);
    // Checked before the assert's message is made: this runs for every write.
    if (last !== undefined && last.revision >= version.revision)
      assert(false, `memtable revisions must increase (${last.revision} then ${version.revision})`);
    // A copy: the value given may be a view of a buffer its owner reuses (a request, a WAL read).
    const value = version.value === null ? null : new Uint8Array(version.value);
    const { revision, createRevision, expiresAtMs } = version;
    const entry: Entry =
      expiresAtMs === undefined
        ? { key: slot.key, revision, value, createRevision, version: version.version }
        : { key: slot.key, revision, value, createRevision, version: version.version, expiresAtMs };
    slot.versions.push(entry);
    this.heldBytes += entryBytes(entry);
    this.held++;
    this.newestRevision = Math.max(this.newestRevision, version.revision);
    return entry;
  }

  get(key: Uint8Array, revision: number): Entry | undefined {
    return this.find(keyText(key), revision);
  }

  /** `get` by the key's text: the store's point reads. */
  find(key: string, revision: number): Entry | undefined {
    const versions = this.versionsOf(key);
    const at = newestAtOrBelow(versions, revision);
    return at === -1 ? undefined : versions[at];
  }

  *entries(range: KeyRange, reverse = false): Generator<Entry> {
    const low = range.start === undefined ? undefined : sortKey(range.start);
    const high = range.end === undefined ? undefined : sortKey(range.end);
    for (const { versions } of this.tree.range(low, high, reverse)) {
      if (reverse) yield* versions;
      else for (let i = versions.length - 1; i >= 0; i--) yield versions[i]!;
    }
  }

  /**
   * Drops the versions of `key` no reader at or above `floor` can see: those older than the newest
   * one at or below the floor, and that one too if it is a tombstone and `olderRunsMayHold()` says
   * no older run may hold a version it hides. Returns how many went.
   */
  compact(key: string, floor: number, olderRunsMayHold: () => boolean): number {
    assert(!this.isFrozen, "a frozen memtable is not compacted (its table is)");
    const versions = this.byText.get(key)?.versions;
    if (versions === undefined) return 0;
    const visible = newestAtOrBelow(versions, floor);
    if (visible === -1) return 0;
    const dropTombstone = versions[visible]!.value === null && !olderRunsMayHold();
    const drop = dropTombstone ? visible + 1 : visible;
    if (drop === 0) return 0;
    const dropped = versions.splice(0, drop);
    for (const entry of dropped) this.heldBytes -= entryBytes(entry);
    this.held -= dropped.length;
    return dropped.length;
  }

  /** Whether a compaction at a higher floor could drop a version of `key` (it has several, or a tombstone). */
  mayHoldGarbage(key: string): boolean {
    const versions = this.versionsOf(key);
    return versions.length > 1 || versions.at(-1)?.value === null;
  }

  private versionsOf(key: string): readonly Entry[] {
    return this.byText.get(key)?.versions ?? NO_VERSIONS;
  }

  /** Makes the memtable immutable: from now on it is what its flush writes to a table. */
  freeze(): void {
    this.isFrozen = true;
  }

  get frozen(): boolean {
    return this.isFrozen;
  }

  /** About the heap bytes the memtable takes: keys, values and their overheads. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Versions held. */
  get entryCount(): number {
    return this.held;
  }

  /** The newest revision ever added (0: none); a reader of changes after it may skip the run. */
  get maxRevision(): number {
    return this.newestRevision;
  }
}

function entryBytes(entry: Entry): number {
  return (entry.value?.byteLength ?? 0) + ENTRY_OVERHEAD_BYTES;
}

/** The index of the newest of `versions` (oldest first) at or below `revision`; -1 when all are newer. */
function newestAtOrBelow(versions: readonly Entry[], revision: number): number {
  // The newest is the common answer; a long history is searched.
  if (versions.length === 0 || versions.at(-1)!.revision <= revision) return versions.length - 1;
  let low = 0;
  let high = versions.length - 2;
  let found = -1;
  while (low <= high) {
    const middle = (low + high) >>> 1;
    if (versions[middle]!.revision <= revision) {
      found = middle;
      low = middle + 1;
    } else high = middle - 1;
  }
  return found;
}

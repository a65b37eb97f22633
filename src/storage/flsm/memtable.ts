import { assert } from "../../errors.ts";
import { fromIndexKey, toIndexKey } from "../mvcc/key-order.ts";
import { SLAB_BYTES } from "../mvcc/packed/value-slabs.ts";
import { type ChainTuning, NONE, type Version, VersionChains } from "../mvcc/version-chain.ts";
import type { Entry, KeyRange, SortedRun } from "./entry.ts";
import { keyBytes, keyText } from "./key-bytes.ts";

/**
 * What a version and a key cost in the packed structures beside their bytes: a version's row (five
 * numbers) and its value's slab header; a key's entry in the index (hash slot, order leaf, head and
 * key location) and its key's slab header. What `bytes` adds up, so that a memtable of
 * `--memtable-bytes` takes about that much memory (slabs hold at most about twice their live bytes
 * while overwrites leave holes: value-slabs.ts).
 */
export const ENTRY_OVERHEAD_BYTES = 48;
export const KEY_OVERHEAD_BYTES = 48;

/** Bytes of memtable when none are given: a store's memtable, the disk engine's budget for its three (`--memtable-bytes`). */
export const MEMTABLE_BYTES_DEFAULT = 64 * 1024 * 1024;

/** Rows a memtable of `memtableBytes` holds at most, about: no version costs less. */
const SMALLEST_VERSION_BYTES = ENTRY_OVERHEAD_BYTES + KEY_OVERHEAD_BYTES;

/**
 * Chunks and slabs sized for the memtable: a server's (64 MiB) gets the memory engine's sizes, a
 * test's tiny one (a few hundred bytes, so that every level and guard is hit) small ones, or each of
 * its thousands of memtables would allocate megabytes.
 */
function tuningFor(memtableBytes: number): ChainTuning {
  const bits = (count: number, low: number, high: number) =>
    Math.max(low, Math.min(high, Math.ceil(Math.log2(Math.max(1, count)))));
  const rows = memtableBytes / SMALLEST_VERSION_BYTES;
  return {
    chunkBits: bits(rows, 4, 16),
    indexChunkBits: bits(rows, 4, 14),
    slabBytes: 2 ** bits(memtableBytes / 16, 8, Math.log2(SLAB_BYTES)),
  };
}

/**
 * The newest versions, in memory: a SortedRun that accepts writes, until `freeze()` makes it
 * immutable (what a flush writes to a table). Held in the memory engine's packed structures
 * (version-chain.ts): keys in a packed index (a hash table of ids, and leaves of ids in key order),
 * versions as rows of numbers, values in byte slabs — no object per key or version, so a memtable
 * of millions of versions gives the garbage collector nothing to trace, and its memory goes back
 * whole when the memtable goes after its flush. A version carries its counters (create revision,
 * version) as the store worked them out: a key's older versions may be in tables, not here.
 *
 *   add a@3 "x", add b@4 "y", add a@5 ∅      entries: (a,5,∅) (a,3,"x") (b,4,"y")
 *   get(a, 4) → (a,3,"x");  get(a, 5) → (a,5,∅): the tombstone (the key is deleted at 5)
 *   compact(a, floor 5)                       (a,3) is shadowed by (a,5) ≤ 5: dropped; the tombstone
 *                                             too when no older run may hold a version of a
 *   freeze()                                  add throws from now on
 *
 * Reads return entries made for the call, values copied out of the slabs.
 */
export class Memtable implements SortedRun {
  private readonly chains: VersionChains;
  private heldBytes = 0;
  private held = 0;
  private newestRevision = 0;
  private isFrozen = false;

  /** `memtableBytes`: the size it is frozen at, which its chunks and slabs are sized for. */
  constructor(memtableBytes: number = MEMTABLE_BYTES_DEFAULT) {
    this.chains = new VersionChains(tuningFor(memtableBytes));
  }

  /** Adds `version` of `key` as the key's newest here (revisions only grow). */
  add(key: string, version: Version): void {
    assert(!this.isFrozen, "a frozen memtable takes no writes");
    const { chains } = this;
    const indexKey = toIndexKey(key);
    const id = chains.index.find(indexKey);
    if (id === NONE) this.heldBytes += Buffer.byteLength(key) + KEY_OVERHEAD_BYTES;
    chains.appendCounted(indexKey, id, version);
    this.heldBytes += (version.value?.byteLength ?? 0) + ENTRY_OVERHEAD_BYTES;
    this.held++;
    this.newestRevision = Math.max(this.newestRevision, version.revision);
  }

  get(key: Uint8Array, revision: number): Entry | undefined {
    return this.entryAt(keyText(key), revision, key);
  }

  /** `get` by the key's text: the store's point reads. */
  find(key: string, revision: number): Entry | undefined {
    return this.entryAt(key, revision);
  }

  private entryAt(key: string, revision: number, bytes?: Uint8Array): Entry | undefined {
    const { chains } = this;
    const id = chains.index.find(toIndexKey(key));
    if (id === NONE) return undefined;
    const slot = chains.versionAt(id, revision);
    return slot === NONE ? undefined : chains.keyedVersion(slot, bytes ?? keyBytes(key));
  }

  *entries(range: KeyRange, reverse = false): Generator<Entry> {
    const { chains } = this;
    const low = range.start === undefined ? undefined : toIndexKey(keyText(range.start));
    const high = range.end === undefined ? undefined : toIndexKey(keyText(range.end));
    const ids = reverse ? chains.index.backward(high) : chains.index.forward(low);
    const bound = reverse ? low : high;
    for (const id of ids) {
      if (bound !== undefined && (reverse ? chains.index.key(id) < bound : chains.index.key(id) >= bound)) return;
      const key = chains.index.asciiKey(id) ?? keyBytes(fromIndexKey(chains.index.key(id)));
      if (reverse) for (const slot of chains.versions(id)) yield chains.keyedVersion(slot, key);
      else
        for (let slot = chains.newest(id); slot !== NONE; slot = chains.older(slot))
          yield chains.keyedVersion(slot, key);
    }
  }

  /**
   * Drops the versions of `key` no reader at or above `floor` can see: those older than the newest
   * one at or below the floor, and that one too if it is a tombstone and `olderRunsMayHold()` says
   * no older run may hold a version it hides. Returns how many went.
   */
  compact(key: string, floor: number, olderRunsMayHold: () => boolean): number {
    assert(!this.isFrozen, "a frozen memtable is not compacted (its table is)");
    const { chains } = this;
    const indexKey = toIndexKey(key);
    const id = chains.index.find(indexKey);
    if (id === NONE) return 0;
    const visible = chains.versionAt(id, floor);
    if (visible === NONE) return 0;
    const keepTombstone = chains.isTombstone(visible) && olderRunsMayHold();
    const freedBefore = chains.valueBytesFreed;
    const dropped = chains.compact(id, floor, undefined, keepTombstone);
    if (dropped === 0) return 0;
    this.heldBytes -= chains.valueBytesFreed - freedBefore + dropped * ENTRY_OVERHEAD_BYTES;
    if (chains.index.find(indexKey) === NONE) this.heldBytes -= Buffer.byteLength(key) + KEY_OVERHEAD_BYTES;
    this.held -= dropped;
    return dropped;
  }

  /** Whether a compaction at a higher floor could drop a version of `key` (it has several, or a tombstone). */
  mayHoldGarbage(key: string): boolean {
    const id = this.chains.index.find(toIndexKey(key));
    return id !== NONE && this.chains.mayHoldGarbage(id);
  }

  /** Moves the live values of one slab that compactions left half empty; true when more wait. */
  evacuate(): boolean {
    return this.chains.evacuationPending && this.chains.evacuateSlab();
  }

  /** Makes the memtable immutable: from now on it is what its flush writes to a table. */
  freeze(): void {
    this.isFrozen = true;
  }

  get frozen(): boolean {
    return this.isFrozen;
  }

  /** About the bytes the memtable takes: keys, values and their rows. */
  get bytes(): number {
    return this.heldBytes;
  }

  /** Bytes of its typed arrays and slabs (what it holds, spare room and holes included). */
  get allocatedBytes(): number {
    return this.chains.allocatedBytes;
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

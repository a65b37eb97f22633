import { assert } from "../../errors.ts";

/**
 * The versions of one key, oldest first, each stamped with the revision of the commit that wrote it.
 * A `null` value is a tombstone (the key was deleted at that revision).
 *
 * Worked example (the same steps run in test/storage/version-chain.test.ts):
 *
 *   put  k=a  at rev 3      [3:a]
 *   put  k=b  at rev 5      [3:a, 5:b]
 *   del  k    at rev 7      [3:a, 5:b, 7:∅]
 *   read at rev 4 → a,  at rev 6 → b,  at rev 7 → missing,  at rev 2 → missing
 *   compact at floor 5      [5:b, 7:∅]     (3:a is shadowed by 5:b, which is ≤ the floor)
 *   compact at floor 7      []             (the tombstone is ≤ the floor: nothing is left to read)
 *
 * Invariants: revisions strictly increase; no two tombstones in a row (deleting a deleted key
 * writes nothing); a chain never starts with a tombstone after compaction.
 */
export interface Version {
  readonly revision: number;
  readonly value: Uint8Array | null;
  /** The revision that created the key's current life (the first put after it was missing). */
  readonly createRevision: number;
  /** Puts since then, this one included (1 for a new key; 0 for a tombstone). */
  readonly version: number;
  /** Wall-clock deadline (Unix ms) after which the key is deleted; undefined: no TTL. */
  readonly expiresAtMs?: number;
}

/** The version a put or delete at `revision` makes, following `previous` (the key's newest). */
export function nextVersion(previous: Version | undefined, revision: number, value: Uint8Array | null, expiresAtMs?: number): Version {
  if (value === null) return { revision, value, createRevision: 0, version: 0 };
  const alive = previous !== undefined && previous.value !== null;
  return {
    revision,
    value,
    createRevision: alive ? previous.createRevision : revision,
    version: alive ? previous.version + 1 : 1,
    ...(expiresAtMs === undefined ? {} : { expiresAtMs }),
  };
}

export type VersionChain = Version[];

export function newest(chain: VersionChain): Version | undefined {
  return chain[chain.length - 1];
}

/** The version visible at `revision` (possibly a tombstone), or undefined when there was none. */
export function versionAt(chain: VersionChain, revision: number): Version | undefined {
  for (let i = chain.length - 1; i >= 0; i--) {
    const version = chain[i]!;
    if (version.revision <= revision) return version;
  }
  return undefined;
}

/** The value visible at `revision`, or undefined when the key did not exist then. */
export function readAt(chain: VersionChain, revision: number): Uint8Array | undefined {
  return versionAt(chain, revision)?.value ?? undefined;
}

/** Adds the version a put (or, with `null`, a delete) at `revision` makes; returns it. */
export function append(chain: VersionChain, revision: number, value: Uint8Array | null, expiresAtMs?: number): Version {
  const last = newest(chain);
  assert(last === undefined || last.revision < revision, `version chain revisions must increase (${last?.revision} then ${revision})`);
  assert(!(last?.value === null && value === null), "two tombstones in a row");
  const version = nextVersion(last, revision, value, expiresAtMs);
  chain.push(version);
  return version;
}

/**
 * Drops every version no reader at or after `floor` can see: all versions shadowed by a newer one
 * that is ≤ floor, and the version at the floor itself if it is a tombstone. Returns how many
 * versions were dropped.
 */
export function compact(chain: VersionChain, floor: number): number {
  // The version a read at `floor` sees; everything older is unreachable.
  let visible = -1;
  for (let i = chain.length - 1; i >= 0; i--) {
    if (chain[i]!.revision <= floor) {
      visible = i;
      break;
    }
  }
  if (visible < 0) return 0;
  const dropUpTo = chain[visible]!.value === null ? visible + 1 : visible;
  if (dropUpTo > 0) chain.splice(0, dropUpTo);
  return dropUpTo;
}

/** True when a later compaction (at a higher floor) could still drop something from this chain. */
export function mayHoldGarbage(chain: VersionChain): boolean {
  return chain.length > 1 || newest(chain)?.value === null;
}

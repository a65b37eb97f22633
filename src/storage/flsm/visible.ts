import type { Version } from "../mvcc/version-chain.ts";
import { compareKeyBytes, type Entry } from "./entry.ts";

/** One key's versions from a merged stream, newest first. */
export interface KeyVersions {
  readonly key: Uint8Array;
  readonly versions: readonly Entry[];
}

/**
 * Groups a merged stream (mergeRuns) by key: forward, a key's versions come newest first; in
 * reverse, oldest first, and are turned round, so that every group reads newest first.
 */
export function* byKey(entries: Iterator<Entry>, reverse = false): Generator<KeyVersions> {
  let group: Entry[] = [];
  const done = (): KeyVersions => ({ key: group[0]!.key, versions: reverse ? group.reverse() : group });
  for (let next = entries.next(); !next.done; next = entries.next()) {
    const entry = next.value;
    if (group.length > 0 && !sameKey(group[0]!.key, entry.key)) {
      yield done();
      group = [];
    }
    group.push(entry);
  }
  if (group.length > 0) yield done();
}

function sameKey(a: Uint8Array, b: Uint8Array): boolean {
  return a === b || compareKeyBytes(a, b) === 0;
}

/** The version a read at `revision` sees (possibly a tombstone): the newest at or below it. */
export function visibleAt(versions: readonly Entry[], revision: number): Entry | undefined {
  return versions.find((entry) => entry.revision <= revision);
}

/**
 * The versions (newest first) a reader at or above `floor` may still see: every one above the
 * floor and the newest at or below it, unless that one is a tombstone (it hides nothing any more).
 */
export function retainedAbove(versions: readonly Entry[], floor: number): readonly Entry[] {
  const atFloor = versions.findIndex((entry) => entry.revision <= floor);
  if (atFloor === -1) return versions;
  return versions.slice(0, versions[atFloor]!.value === null ? atFloor : atFloor + 1);
}

/** An entry as a plain version (a checkpoint's chains hold no key bytes). */
export function toVersion({ revision, value, createRevision, version, expiresAtMs }: Entry): Version {
  return { revision, value, createRevision, version, ...(expiresAtMs === undefined ? {} : { expiresAtMs }) };
}

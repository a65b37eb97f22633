import fc from "fast-check";
import type { FileSystem } from "../../../../src/io/fs/file-system.ts";
import { compareEntries, compareKeyBytes, type Entry, type KeyRange } from "../../../../src/storage/flsm/entry.ts";
import { type FinishedTable, type TableOptions, TableWriter } from "../../../../src/storage/flsm/table/writer.ts";

/**
 * Keys that share prefixes (a small alphabet) often, and sometimes any bytes: empty keys, bytes
 * above 0x7f (non-ASCII UTF-8 and invalid UTF-8 alike), long keys.
 */
export const keyArbitrary = fc.oneof(
  { weight: 4, arbitrary: fc.uint8Array({ min: 0x61, max: 0x63, maxLength: 5 }) },
  { weight: 1, arbitrary: fc.uint8Array({ maxLength: 8 }) },
  // Long keys: suffixes past the builder's byte-by-byte copy.
  { weight: 1, arbitrary: fc.uint8Array({ min: 0x61, max: 0x62, minLength: 30, maxLength: 80 }) },
  { weight: 1, arbitrary: fc.constantFrom("é", "日本", "🙂", "a\u0000b").map((s) => new TextEncoder().encode(s)) },
);

/** A value of `length` bytes, cheap to make at 10 KiB. */
function patternValue(length: number, seed: number): Uint8Array {
  const value = new Uint8Array(length);
  for (let i = 0; i < length; i++) value[i] = (seed + i * 31) & 0xff;
  return value;
}

const valueArbitrary = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 1, arbitrary: fc.integer({ min: 41, max: 10 * 1024 }) },
);

const versionArbitrary = fc.record({
  revision: fc.integer({ min: 1, max: 60 }),
  tombstone: fc.boolean(),
  valueLength: valueArbitrary,
  deadline: fc.option(fc.integer({ min: 0, max: 2 ** 45 }), { freq: 3 }),
});

/** Entries in internal-key order, one per (key, revision): many versions per key, tombstones, TTLs. */
export const sortedEntriesArbitrary = fc
  .array(fc.record({ key: keyArbitrary, versions: fc.array(versionArbitrary, { minLength: 1, maxLength: 6 }) }), {
    minLength: 1,
    maxLength: 60,
  })
  .map((keys) => {
    const entries: Entry[] = [];
    for (const { key, versions } of keys)
      for (const { revision, tombstone, valueLength, deadline } of versions) {
        const value = tombstone ? null : patternValue(valueLength, revision);
        const entry: Entry = { key, revision, value, createRevision: revision, version: tombstone ? 0 : revision % 7 };
        entries.push(deadline === null ? entry : { ...entry, expiresAtMs: deadline });
      }
    entries.sort(compareEntries);
    return entries.filter((e, i) => i === 0 || compareEntries(entries[i - 1] as Entry, e) !== 0);
  });

/** Tiny blocks and restart intervals, so that a few entries span many blocks and restart points. */
export const tinyTableOptions = fc.record({
  blockBytes: fc.integer({ min: 1, max: 600 }),
  restartInterval: fc.integer({ min: 1, max: 17 }),
  bloomBitsPerKey: fc.constantFrom(4, 10),
});

export async function writeTable(
  fs: FileSystem,
  path: string,
  entries: readonly Entry[],
  options: Partial<TableOptions> = {},
): Promise<FinishedTable> {
  const writer = await TableWriter.create(fs, path, options);
  for (const entry of entries) await writer.add(entry);
  return writer.finish();
}

/** The model of `get`: the first entry of the key at or below the revision. */
export function modelGet(entries: readonly Entry[], key: Uint8Array, revision: number): Entry | undefined {
  return entries.find((e) => compareKeyBytes(e.key, key) === 0 && e.revision <= revision);
}

/** The model of `entries`. */
export function modelRange(entries: readonly Entry[], { start, end }: KeyRange, reverse: boolean): Entry[] {
  const inRange = entries.filter(
    (e) =>
      (start === undefined || compareKeyBytes(e.key, start) >= 0) &&
      (end === undefined || compareKeyBytes(e.key, end) < 0),
  );
  return reverse ? inRange.reverse() : inRange;
}

import { expect } from "bun:test";
import type { FileSystem } from "../../src/io/fs/file-system.ts";
import type { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import type { Database } from "../../src/storage/database.ts";
import { bytes } from "./bytes.ts";
import { interceptWrites } from "./storage.ts";

/** Keys `prefix/0` .. `prefix/<count - 1>`. */
export const keyNames = (prefix: string, count: number): string[] =>
  Array.from({ length: count }, (_, i) => `${prefix}/${String(i).padStart(4, "0")}`);

/**
 * Writes `commands` batches over `keys` (a set of three, every seventh command a delete of one),
 * `concurrency` at a time, so that memtables freeze, tables are flushed and compacted, and the
 * commands' groups overlap: what writers do to a server while a backup runs.
 */
export async function writeLoad(
  db: Database,
  keys: readonly string[],
  options: { commands: number; seed: number; concurrency?: number },
): Promise<void> {
  const concurrency = options.concurrency ?? 4;
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < options.commands) {
        const n = next++;
        const key = (i: number) => keys[(n * 31 + i * 17 + options.seed) % keys.length]!;
        if (n % 7 === 0) await db.write([{ key: key(0), value: null }]);
        else
          await db.write(
            [0, 1, 2].map((i) => ({ key: key(i), value: bytes(`s${options.seed}c${n}k${i} `.repeat(1 + (n % 4))) })),
          );
      }
    }),
  );
}

/**
 * The backup, opened (`restored`), holds what the original held at `revision` (expectHeldAt), passes
 * `check`, and takes the next write at the revision after it; closed afterwards.
 */
export async function expectRestored(
  original: Database,
  restored: Promise<Database>,
  revision: number,
  keys: readonly string[],
  check?: (restored: Database) => void,
): Promise<void> {
  const db = await restored;
  try {
    expectHeldAt(original, db, revision, keys);
    check?.(db);
    expect((await db.write([{ key: "restored/next", value: bytes("x") }])).revision).toBe(revision + 1);
  } finally {
    await db.close();
  }
}

/**
 * The backup, opened, holds what the original held at `revision`, key by key and in a scan; it
 * stands at that revision. The original must keep history back to it (historyRevisions).
 */
export function expectHeldAt(original: Database, backup: Database, revision: number, keys: readonly string[]): void {
  expect(backup.revision).toBe(revision);
  expect(backup.read(keys, revision).records).toEqual(original.read(keys, revision).records);
  const scan = (db: Database) => db.scan({ revision, limit: keys.length + 1 }).records;
  const scanned = scan(original);
  expect(scanned.length).toBeGreaterThan(0);
  expect(scan(backup)).toEqual(scanned);
}

/**
 * `memory` through a FileSystem that records every directory made: where a backup's temporary
 * (named at random) was, so that a test can check nothing is left of it.
 */
export function recordingDirs(memory: MemoryFileSystem): { fs: FileSystem; made: string[] } {
  const made: string[] = [];
  const fs: FileSystem = {
    ...interceptWrites(memory, (_call, run) => run()),
    mkdirp(dir) {
      made.push(dir);
      return memory.mkdirp(dir);
    },
  };
  return { fs, made };
}

/** Nothing is left of a failed backup to `target`: neither it nor a directory made beside it for it. */
export async function expectNothingLeft(memory: MemoryFileSystem, made: readonly string[], target: string) {
  const temporaries = made.filter((dir) => dir.startsWith(`${target}.tmp-`));
  expect(temporaries.length).toBeGreaterThan(0);
  for (const dir of [...temporaries, target]) expect(await memory.exists(dir)).toBe(false);
}

import { describe, expect, test } from "bun:test";
import type { FileSystem } from "../../../src/io/fs/file-system.ts";
import type { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import { mulberry32 } from "../../../src/random.ts";
import type { Database } from "../../../src/storage/database.ts";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import type { FsyncMode } from "../../../src/storage/wal/wal-writer.ts";
import { text } from "../../helpers/bytes.ts";
import { del, put } from "../../helpers/storage.ts";
import { StepDisk, type StepFault } from "./manifest/step-disk.ts";

/**
 * Crash tests of the FLSM engine's flushes, through a durable database (the WAL in front, the
 * engine behind): every write freezes the memtable, so each write is followed by a flush — a table
 * written and synced, its directory synced, the WAL synced, the manifest's edit appended and
 * synced, the WAL segments it covers removed. Each step of that run (every append, sync, directory
 * sync, removal) in turn has the power cut there, or fails with ENOSPC or EIO and the power is cut
 * afterwards. The database reopened from what the disk kept has every write the WAL acknowledged,
 * nothing else than whole writes in order, and takes new writes (no gap in the WAL, no orphan
 * table named).
 */

const DIR = "/data/homekv";
const KEYS = ["a", "b", "c"];
const WRITES = 6;
const ENGINE = {
  kind: "flsm",
  memtableBytes: 1,
  tuning: { table: { blockBytes: 64, restartInterval: 2 } },
} as const;

/** Write i of the run (1-based, at revision i): a put, and every third a delete of a key written before. */
const writeOf = (i: number) => (i % 3 === 0 ? [del(KEYS[(i - 1) % 3]!)] : [put(KEYS[i % 3]!, `v${i}`)]);

/** The values of KEYS after each revision, from 0 (nothing) to WRITES. */
const MODEL: Map<string, string>[] = [new Map()];
for (let i = 1; i <= WRITES; i++) {
  const next = new Map(MODEL.at(-1));
  for (const op of writeOf(i)) op.value === null ? next.delete(op.key) : next.set(op.key, text(op.value)!);
  MODEL.push(next);
}

function open(fs: FileSystem, fsync: FsyncMode = "always"): Promise<Database> {
  // A tiny segment size: the WAL starts a segment every write or two, so flushes cut it.
  return openDurableDatabase({
    fs,
    dir: DIR,
    fsync,
    walSegmentBytesMax: 64,
    engine: ENGINE,
    historyRevisions: Number.POSITIVE_INFINITY,
    isAlive: () => false,
  });
}

/** Runs the writes on a fresh disk with `fault` at the `step`-th step after the database opened. */
async function runWithFault(step?: number, fault?: StepFault) {
  const disk = new StepDisk();
  const db = await open(disk.fs);
  const first = disk.steps.length;
  if (step !== undefined && fault) disk.failAt(first + step, fault);
  let acknowledged = 0;
  // Up to the first refused write: a refused write takes no revision, and the model numbers them all.
  for (let i = 1; i <= WRITES && acknowledged === i - 1; i++) {
    const written = await db.write(writeOf(i)).then(
      (result) => result.revision,
      () => undefined,
    );
    if (written !== undefined) {
      expect(written).toBe(i);
      acknowledged = i;
    }
  }
  // A checkpoint flushes what is left (it fails once the power is gone); closing waits for it.
  await db.checkpoint().catch(() => {});
  await db.close().catch(() => {});
  const stats = db.stats().flsm!;
  return { disk, acknowledged, stats, steps: disk.steps.slice(first) };
}

/** Reopens on what the disk kept: every acknowledged write is there, whole, in order; the database goes on. */
async function expectRecovered(memory: MemoryFileSystem, acknowledged: number): Promise<void> {
  const db = await open(memory);
  try {
    expect(db.revision).toBeGreaterThanOrEqual(acknowledged);
    expect(db.revision).toBeLessThanOrEqual(WRITES);
    for (let revision = 0; revision <= db.revision; revision++) {
      const values = db.read(KEYS, revision).records.map((record) => text(record.value));
      expect(values).toEqual(KEYS.map((key) => MODEL[revision]!.get(key)));
    }
    expect((await db.write([put("after", "crash")])).revision).toBe(db.revision);
    await db.checkpoint();
  } finally {
    await db.close();
  }
  const again = await open(memory);
  try {
    expect(again.read(["after"]).records[0]!.value).toBeDefined();
    // Only tables the manifest names are left.
    const tables = (await memory.list(`${DIR}/flsm`)).filter((name) => name.endsWith(".sst"));
    expect(tables.length).toBe(again.stats().flsm!.levels.reduce((sum, level) => sum + level.tables, 0));
  } finally {
    await again.close();
  }
}

describe("an FLSM database interrupted at each step of its flushes", async () => {
  const reference = await runWithFault();

  test("with nothing failing, every write flushes: tables written and synced, the manifest logged, the WAL cut", async () => {
    expect(reference.acknowledged).toBe(WRITES);
    expect(reference.stats.flushes).toBe(WRITES);
    expect(reference.stats.flushFailures).toBe(0);
    for (const call of ["append", "sync", "syncDir", "remove"] as const) expect(reference.steps).toContain(call);
    await expectRecovered(reference.disk.memory, WRITES);
  });

  for (const [step, call] of reference.steps.entries()) {
    test(`step ${step} (${call}): a power cut there, torn or not, and ENOSPC or EIO there then a power cut, lose no acknowledged write`, async () => {
      for (const fault of ["power cut", "ENOSPC", "EIO"] as const) {
        const { disk, acknowledged } = await runWithFault(step, fault);
        disk.memory.crash(fault === "power cut" ? mulberry32(step + 1) : undefined);
        await expectRecovered(disk.memory, acknowledged);
      }
    });
  }
});

test("under fsync everysec a flush syncs the WAL before the manifest names its revision: no gap in the log after a power cut", async () => {
  const disk = new StepDisk();
  const db = await open(disk.fs, "everysec");
  for (let i = 1; i <= WRITES; i++) await db.write(writeOf(i));
  await db.checkpoint();
  // The power goes without a close: the WAL was synced by the flushes alone.
  disk.memory.crash();
  await expectRecovered(disk.memory, WRITES);
});

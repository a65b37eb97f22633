import { describe, expect, test } from "bun:test";
import fc from "fast-check";
import { HomeKvError } from "../../src/errors.ts";
import { readFrame } from "../../src/io/format/frame.ts";
import type { FileSystem } from "../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { CHECKPOINT_FILES } from "../../src/storage/checkpoint/checkpoint-format.ts";
import type { Database } from "../../src/storage/database.ts";
import { type DurableOptions, openDurableDatabase } from "../../src/storage/durable-database.ts";
import type { WriteOp } from "../../src/storage/ops.ts";
import { WAL_SEGMENTS } from "../../src/storage/wal/wal-format.ts";
import type { FsyncMode } from "../../src/storage/wal/wal-writer.ts";
import { text } from "../helpers/bytes.ts";
import { del, interceptWrites, put } from "../helpers/storage.ts";
import { waitFor } from "../helpers/wait.ts";

const DIR = "/data/homekv";
const WAL_DIR = `${DIR}/wal`;
const CHECKPOINT_DIR = `${DIR}/checkpoints`;

/** Opens `DIR` on `fs`; a LOCK left by a crash of this same process counts as stale. */
async function open(
  fs: MemoryFileSystem,
  options: Partial<DurableOptions> = {},
): Promise<{ db: Database; logs: string[] }> {
  const logs: string[] = [];
  const db = await openDurableDatabase({
    fs,
    dir: DIR,
    isAlive: () => false,
    log: (line) => logs.push(line),
    ...options,
  });
  return { db, logs };
}

function readAll(db: Database, keys: readonly string[]): Record<string, string | undefined> {
  const { records } = db.read(keys);
  return Object.fromEntries(keys.map((key, i) => [key, text(records[i]!.value)]));
}

/** The recovery line a start logs. */
function recoveryLine(logs: string[]): string {
  const line = logs.find((l) => l.startsWith("recovered revision"));
  if (line === undefined) throw new Error(`no recovery line in ${JSON.stringify(logs)}`);
  return line;
}

async function walSegmentNames(fs: MemoryFileSystem): Promise<string[]> {
  return (await fs.list(WAL_DIR)).filter((name) => WAL_SEGMENTS.parseFileName(name) !== undefined).sort();
}

/**
 * A power cut that also kills the process: keeps only synced bytes, and makes every later disk call
 * of the old instance fail, so that it cannot touch the "disk" after its death. Synchronous, so that
 * nothing of the old instance runs between the cut and the moment it stops.
 */
function powerCut(fs: MemoryFileSystem): void {
  fs.crash();
  for (const op of ["append", "sync", "truncate", "rename", "remove", "createExclusive", "syncDir"] as const)
    fs.injectFault({ op, code: "EIO" });
}

/**
 * Delegates to `inner`, counting the calls that change the disk once `arm()` was called; the
 * `at`-th one is preceded (or followed) by a power cut: a crash at an exact point of the write path,
 * such as between an fsync and the acknowledgement of the writes it covered.
 */
function crashingFs(
  inner: MemoryFileSystem,
  plan: { at: number; before: boolean },
  onCut: () => void,
): FileSystem & { arm(): void } {
  let armed = false;
  let calls = 0;
  const cut = () => {
    powerCut(inner);
    onCut();
  };
  async function step<T>(run: () => Promise<T>): Promise<T> {
    const now = armed && ++calls === plan.at;
    if (now && plan.before) cut();
    const result = await run();
    if (now && !plan.before) cut();
    return result;
  }
  return Object.assign(
    interceptWrites(inner, (_call, run) => step(run)),
    {
      arm: () => {
        armed = true;
      },
    },
  );
}

describe("crash and restart", () => {
  test("with fsync always, every acknowledged write survives a crash, and revisions continue after the restart", async () => {
    const fs = new MemoryFileSystem();
    const { db } = await open(fs);
    const keys = Array.from({ length: 10 }, (_, i) => `key-${i}`);
    const model: Record<string, string | undefined> = {};
    for (let i = 0; i < 30; i++) {
      const key = keys[(i * 7) % keys.length]!;
      const op = i % 5 === 4 ? del(key) : put(key, `value ${i} ✓`);
      const result = await db.write([op, put(`other-${i % 3}`, "")]);
      expect(result.revision).toBe(i + 1);
      model[key] = op.value === null ? undefined : `value ${i} ✓`;
      model[`other-${i % 3}`] = "";
    }
    fs.crash();

    const { db: reopened, logs } = await open(fs);
    expect(reopened.read([]).revision).toBe(30);
    expect(readAll(reopened, Object.keys(model))).toEqual(model);
    expect(recoveryLine(logs)).toContain("30 WAL records replayed");
    expect((await reopened.write([put("after", "restart")])).revision).toBe(31);
    expect(readAll(reopened, ["after"])).toEqual({ after: "restart" });
    await reopened.close();
  });

  test("a checkpoint, more writes, a crash: the restart loads the checkpoint and replays only the writes after it", async () => {
    const fs = new MemoryFileSystem();
    const { db } = await open(fs);
    for (let i = 1; i <= 10; i++) await db.write([put(`k${i}`, `v${i}`)]);
    const info = await db.checkpoint();
    expect(info.revision).toBe(10);
    expect(db.stats().lastCheckpoint?.revision).toBe(10);
    for (let i = 11; i <= 15; i++) await db.write([put(`k${i}`, `v${i}`), del(`k${i - 10}`)]);
    fs.crash();

    const { db: reopened, logs } = await open(fs);
    expect(recoveryLine(logs)).toMatch(/^recovered revision 15 \(10 keys\) .*checkpoint 10, 5 WAL records replayed$/);
    const keys = Array.from({ length: 15 }, (_, i) => `k${i + 1}`);
    expect(readAll(reopened, keys)).toEqual(
      Object.fromEntries(keys.map((k, i) => [k, i < 5 ? undefined : `v${i + 1}`])),
    );
    await reopened.close();
  });

  test("close() leaves a checkpoint at the last revision, so the next start replays no WAL record, and releases the lock", async () => {
    const fs = new MemoryFileSystem();
    const { db } = await open(fs, { pid: 111 });
    for (let i = 1; i <= 12; i++) await db.write([put(`k${i % 4}`, `v${i}`)]);
    await db.close();
    expect(await fs.list(CHECKPOINT_DIR)).toEqual([CHECKPOINT_FILES.fileName(12)]);
    expect(await fs.list(DIR)).not.toContain("LOCK");

    // The lock was released: another live process may open the directory at once.
    const { db: reopened, logs } = await open(fs, { pid: 222, isAlive: () => true });
    expect(recoveryLine(logs)).toMatch(/checkpoint 12, 0 WAL records replayed$/);
    expect(readAll(reopened, ["k0", "k1", "k2", "k3"])).toEqual({ k0: "v12", k1: "v9", k2: "v10", k3: "v11" });
    expect((await reopened.write([put("k0", "next")])).revision).toBe(13);
    await reopened.close();
  });

  test("a second server on a directory in use is refused with E_LOCKED", async () => {
    const fs = new MemoryFileSystem();
    const { db } = await open(fs, { pid: 111 });
    let error: unknown;
    await open(fs, { pid: 222, isAlive: (pid) => pid === 111 }).catch((e) => {
      error = e;
    });
    expect(error).toBeInstanceOf(HomeKvError);
    expect((error as HomeKvError).code).toBe("E_LOCKED");
    expect((error as HomeKvError).message).toContain("pid 111");
    await db.close();
  });

  test("a damaged WAL stops the start with E_CORRUPT, and the lock is released again", async () => {
    const fs = new MemoryFileSystem();
    const { db } = await open(fs);
    for (let i = 1; i <= 3; i++) await db.write([put(`k${i}`, `v${i}`)]);
    fs.crash();
    const [segment] = await walSegmentNames(fs);
    const path = `${WAL_DIR}/${segment}`;
    const file = fs.bytes(path).slice();
    const header = readFrame(file, 0);
    if (header.kind !== "frame") throw new Error("no segment header");
    const first = readFrame(file, header.next);
    if (first.kind !== "frame") throw new Error("no first record");
    file[first.next + 14]! ^= 0xff; // inside the second record, which is followed by a third
    fs.overwrite(path, file);

    let error: unknown;
    await open(fs).catch((e) => {
      error = e;
    });
    expect(error).toBeInstanceOf(HomeKvError);
    expect((error as HomeKvError).code).toBe("E_CORRUPT");
    expect((error as HomeKvError).message).toContain(path);
    expect((error as HomeKvError).message).toContain(`byte offset ${first.next}`);
    expect(await fs.list(DIR)).not.toContain("LOCK");
  });

  test.each(["never", "everysec"] as const)(
    'fsync "%s": a checkpoint newer than the synced WAL, a crash, then a clean restart: the directory still opens',
    async (fsync) => {
      const fs = new MemoryFileSystem();
      const { db } = await open(fs, { fsync });
      for (let i = 1; i <= 5; i++) await db.write([put(`k${i}`, `v${i}`)]);
      await db.checkpoint(); // durable at revision 5, while the WAL records 1..5 are not synced yet
      fs.crash();

      const second = await open(fs, { fsync });
      expect(second.db.read([]).revision).toBe(5);
      expect((await second.db.write([put("after", "crash")])).revision).toBe(6);
      await second.db.close();

      const third = await open(fs, { fsync });
      expect(third.db.read([]).revision).toBe(6);
      expect(readAll(third.db, ["k1", "k5", "after"])).toEqual({ k1: "v1", k5: "v5", after: "crash" });
      await third.db.close();
    },
  );
});

describe("background checkpoints", () => {
  test("past checkpointWalBytes a checkpoint runs by itself and drops the WAL segments it covers", async () => {
    const fs = new MemoryFileSystem();
    const { db, logs } = await open(fs, { walSegmentBytesMax: 256, checkpointWalBytes: 2_048 });
    const segmentCounts: number[] = [];
    const model: Record<string, string> = {};
    for (let i = 0; i < 200; i++) {
      const key = `k${i % 25}`;
      await db.write([put(key, `value ${i} `.padEnd(24, "."))]);
      model[key] = `value ${i} `.padEnd(24, ".");
      segmentCounts.push(db.stats().wal!.segments);
    }
    await waitFor(() => (db.stats().lastCheckpoint?.revision ?? 0) > 150, { what: "a background checkpoint" });
    expect(logs.some((line) => line.startsWith("checkpoint at revision"))).toBe(true);

    // Without dropping, 200 records of ~60 bytes in 256-byte segments would take ~50 segments.
    expect(Math.max(...segmentCounts)).toBeGreaterThan(3);
    expect(segmentCounts.some((count, i) => i > 0 && count < segmentCounts[i - 1]!)).toBe(true);
    expect(db.stats().wal!.segments).toBeLessThan(15);
    expect((await walSegmentNames(fs)).length).toBe(db.stats().wal!.segments);
    // Older checkpoints are removed once a newer one is complete.
    expect((await fs.list(CHECKPOINT_DIR)).filter((n) => n.endsWith(".ckpt")).length).toBe(1);

    // What is left on disk is enough: checkpoint + remaining segments give back every write.
    powerCut(fs);
    const image = fs.image();
    const { db: reopened } = await open(image);
    expect(reopened.read([]).revision).toBe(200);
    expect(readAll(reopened, Object.keys(model))).toEqual(model);
    await reopened.close();
  });
});

describe("crash at a random point (model-based)", () => {
  const KEYS = ["a", "b", "c", "d"];
  const batch = fc.uniqueArray(
    fc.record({ key: fc.constantFrom(...KEYS), value: fc.option(fc.string({ maxLength: 4 }), { nil: null }) }),
    { minLength: 1, maxLength: 3, selector: (op) => op.key },
  );
  type Batch = { key: string; value: string | null }[];
  const toOps = (b: Batch): WriteOp[] => b.map(({ key, value }) => (value === null ? del(key) : put(key, value)));

  /** The live state after the first `count` batches. */
  function modelAfter(batches: readonly Batch[], count: number): Record<string, string | undefined> {
    const state: Record<string, string | undefined> = Object.fromEntries(KEYS.map((k) => [k, undefined]));
    for (const b of batches.slice(0, count)) for (const { key, value } of b) state[key] = value ?? undefined;
    return state;
  }

  const crashPlan = fc.oneof(
    // Between two waves, or after some microtasks of a wave that is not awaited (writes in flight).
    fc.record({
      kind: fc.constant("wave" as const),
      wave: fc.nat(),
      midWave: fc.boolean(),
      microtasks: fc.nat({ max: 60 }),
    }),
    // Just before or just after the n-th call that changes the disk (append, sync, rename, ...).
    fc.record({ kind: fc.constant("diskCall" as const), at: fc.integer({ min: 1, max: 60 }), before: fc.boolean() }),
  );

  /**
   * Random waves of batches, a power cut at a random point, a restart: the state must be the model
   * after some prefix of the batches (each batch all or nothing); with fsync always, that prefix
   * holds every batch acknowledged before the cut. Then a write and a clean restart must work.
   */
  async function crashProperty(fsync: FsyncMode, numRuns: number): Promise<void> {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.record({ batches: fc.array(batch, { minLength: 1, maxLength: 6 }), checkpointAfter: fc.boolean() }),
          {
            minLength: 1,
            maxLength: 6,
          },
        ),
        crashPlan,
        fc.integer({ min: 80, max: 600 }),
        fc.integer({ min: 100, max: 2_000 }),
        async (waves, crash, walSegmentBytesMax, checkpointWalBytes) => {
          const proposed: Batch[] = [];
          const acknowledged: { index: number; revision: number }[] = [];
          /** What had been acknowledged when the power went: later acknowledgements are not real. */
          let acked: { index: number; revision: number }[] | undefined;
          const memory = new MemoryFileSystem();
          const fs = crashingFs(memory, crash.kind === "diskCall" ? crash : { at: 0, before: false }, () => {
            acked ??= [...acknowledged];
          });
          const db = await openDurableDatabase({ fs, dir: DIR, fsync, walSegmentBytesMax, checkpointWalBytes });
          fs.arm();
          const crashWave = crash.kind === "wave" ? crash.wave % waves.length : -1;

          for (const [w, wave] of waves.entries()) {
            if (w === crashWave && crash.kind === "wave" && !crash.midWave) break;
            const writes = wave.batches.map((b) => {
              const index = proposed.push(b) - 1;
              return db.write(toOps(b)).then(
                (result) => {
                  acknowledged.push({ index, revision: result.revision });
                },
                () => {}, // refused after the power cut: never acknowledged
              );
            });
            if (w === crashWave) {
              for (let i = 0; i < (crash.kind === "wave" ? crash.microtasks : 0); i++) await Promise.resolve();
              break;
            }
            await Promise.all(writes);
            if (wave.checkpointAfter) await db.checkpoint().catch(() => {});
          }
          powerCut(memory);
          acked ??= [...acknowledged];
          const image = memory.image();

          const { db: reopened } = await open(image);
          const recovered = reopened.read(KEYS);
          const revision = recovered.revision;
          // Revisions follow the order of the proposals.
          for (const { index, revision: r } of acked) expect(r).toBe(index + 1);
          if (fsync === "always") expect(revision).toBeGreaterThanOrEqual(Math.max(0, ...acked.map((a) => a.revision)));
          expect(revision).toBeLessThanOrEqual(proposed.length);
          expect(Object.fromEntries(KEYS.map((k, i) => [k, text(recovered.records[i]!.value)]))).toEqual(
            modelAfter(proposed, revision),
          );

          // The recovered store goes on from there, and survives a clean restart.
          expect((await reopened.write([put("a", "after")])).revision).toBe(revision + 1);
          await reopened.close();
          const { db: again } = await open(image);
          expect(again.read([]).revision).toBe(revision + 1);
          expect(readAll(again, ["a"])).toEqual({ a: "after" });
          await again.close();
        },
      ),
      { numRuns },
    );
  }

  test('fsync "always": every acknowledged batch survives a crash, and the recovered state is the model after a prefix of the batches, each batch all or nothing', async () => {
    await crashProperty("always", 200);
  });

  test('fsync "never": after a crash the state is the model after a prefix of the batches, each batch all or nothing, and the store restarts cleanly', async () => {
    await crashProperty("never", 100);
  });
});

/**
 * `--table-compression` (FlsmEngineSettings.compression) reaches the tables a database writes, and
 * a data directory whose tables were written under both settings reads back whole.
 */
import { expect, test } from "bun:test";
import { MemoryFileSystem } from "../../../src/io/fs/memory-fs.ts";
import type { Database } from "../../../src/storage/database.ts";
import { openDurableDatabase } from "../../../src/storage/durable-database.ts";
import type { BlockCompression } from "../../../src/storage/engine.ts";
import { bytes, text } from "../../helpers/bytes.ts";

const DIR = "/data";
const KEYS = 300;
/** Values that compress well: every block of them is stored compressed under zstd. */
const valueAt = (key: number, round: number) => `key ${key} round ${round} `.repeat(8);

const open = (fs: MemoryFileSystem, compression: BlockCompression) =>
  openDurableDatabase({ fs, dir: DIR, engine: { kind: "flsm", memtableBytes: 16_384, compression } });

/** Writes every key at `round`, then flushes all of it to tables (a checkpoint of the engine). */
async function writeRound(db: Database, round: number): Promise<void> {
  for (let key = 0; key < KEYS; key += 10)
    await db.write(
      Array.from({ length: 10 }, (_, i) => ({ key: `k${key + i}`, value: bytes(valueAt(key + i, round)) })),
    );
  await db.checkpoint();
}

async function tableBytes(fs: MemoryFileSystem): Promise<number> {
  const names = (await fs.list(`${DIR}/flsm`)).filter((name) => name.endsWith(".sst"));
  expect(names.length).toBeGreaterThan(0);
  return names.reduce((sum, name) => sum + fs.bytes(`${DIR}/flsm/${name}`).byteLength, 0);
}

async function expectRound(db: Database, round: number): Promise<void> {
  const keys = Array.from({ length: KEYS }, (_, key) => `k${key}`);
  const { records } = await db.get(keys);
  expect(records.map((record) => text(record.value))).toEqual(keys.map((_, key) => valueAt(key, round)));
}

test("zstd tables take under half the bytes of tables stored as built; a directory written under both reads back", async () => {
  const sizes: Record<BlockCompression, number> = { zstd: 0, none: 0 };
  const disks: Record<BlockCompression, MemoryFileSystem> = {
    zstd: new MemoryFileSystem(),
    none: new MemoryFileSystem(),
  };
  for (const compression of ["zstd", "none"] as const) {
    const db = await open(disks[compression], compression);
    await writeRound(db, 1);
    await expectRound(db, 1);
    await db.close();
    sizes[compression] = await tableBytes(disks[compression]);
  }
  expect(sizes.zstd).toBeLessThan(sizes.none / 2);

  // The directory written as built, reopened under zstd: its old tables read, its new ones compressed.
  const fs = disks.none;
  const before = new Set(await fs.list(`${DIR}/flsm`));
  const db = await open(fs, "zstd");
  await expectRound(db, 1);
  await writeRound(db, 2);
  await expectRound(db, 2);
  const added = (await fs.list(`${DIR}/flsm`)).filter((name) => name.endsWith(".sst") && !before.has(name));
  expect(added.length).toBeGreaterThan(0);
  await db.close();
  const reopened = await open(fs, "none");
  await expectRound(reopened, 2);
  await reopened.close();
});

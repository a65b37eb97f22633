import { describe, expect, test } from "bun:test";
import { HomeKvError } from "../../src/errors.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { claimDataDirEngine } from "../../src/storage/data-dir-engine.ts";
import { openDurableDatabase } from "../../src/storage/durable-database.ts";
import { bytes, text } from "../helpers/bytes.ts";
import { put } from "../helpers/storage.ts";

const DIR = "/data/homekv";
const ENGINE = `${DIR}/ENGINE`;

async function newFs(): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  return fs;
}

/** The HomeKvError `promise` is refused with. */
async function refusal(promise: Promise<unknown>): Promise<HomeKvError> {
  const error = await promise.then(
    () => undefined,
    (reason: unknown) => reason,
  );
  expect(error).toBeInstanceOf(HomeKvError);
  return error as HomeKvError;
}

describe("claimDataDirEngine", () => {
  test("a new directory records the engine; the same engine is taken again, the other refused naming both", async () => {
    const fs = await newFs();
    await claimDataDirEngine(fs, DIR, "flsm");
    expect(text(fs.bytes(ENGINE))).toBe("flsm\n");
    expect(await fs.list(DIR)).toEqual(["ENGINE"]);
    await claimDataDirEngine(fs, DIR, "flsm");

    const error = await refusal(claimDataDirEngine(fs, DIR, "memory"));
    expect(error.code).toBe("E_CONFIG");
    expect(error.message).toBe(
      `data directory ${DIR} was written by the flsm engine, and this server was started with --engine memory: start it with --engine flsm, or give it another --data-dir`,
    );
    expect(text(fs.bytes(ENGINE))).toBe("flsm\n");
  });

  test("data without an ENGINE file is the memory engine's (the only one before engines were recorded)", async () => {
    const fs = await newFs();
    await fs.mkdirp(`${DIR}/wal`);
    await fs.createExclusive(`${DIR}/wal/00000000000000000001.wal`, bytes("x"));
    expect((await refusal(claimDataDirEngine(fs, DIR, "flsm"))).message).toContain("written by the memory engine");
    expect(await fs.list(DIR)).not.toContain("ENGINE");
    await claimDataDirEngine(fs, DIR, "memory");
    expect(text(fs.bytes(ENGINE))).toBe("memory\n");
  });

  test("empty folders are no data: the directory is still new", async () => {
    const fs = await newFs();
    for (const name of ["wal", "checkpoints", "raft"]) await fs.mkdirp(`${DIR}/${name}`);
    await claimDataDirEngine(fs, DIR, "flsm");
    expect(text(fs.bytes(ENGINE))).toBe("flsm\n");
  });

  test("a damaged ENGINE file stops the start with E_CORRUPT naming the file; a leftover ENGINE.tmp is replaced", async () => {
    const fs = await newFs();
    await fs.createExclusive(`${ENGINE}.tmp`, bytes("fl"));
    await claimDataDirEngine(fs, DIR, "memory");
    expect(await fs.list(DIR)).toEqual(["ENGINE"]);

    fs.overwrite(ENGINE, bytes("flsn\n"));
    const error = await refusal(claimDataDirEngine(fs, DIR, "flsm"));
    expect(error.code).toBe("E_CORRUPT");
    expect(error.message).toBe(`${ENGINE} names no engine HomeKV knows ("flsn"; expected one of memory, flsm)`);
  });

  test("openDurableDatabase claims the directory for its engine, and lets the lock go when refused", async () => {
    const fs = await newFs();
    const db = await openDurableDatabase({ fs, dir: DIR, engine: { kind: "flsm", memtableBytes: 4096 } });
    await db.write([put("a", "1")]);
    await db.close();
    expect(text(fs.bytes(ENGINE))).toBe("flsm\n");

    const error = await refusal(openDurableDatabase({ fs, dir: DIR }));
    expect(error.message).toContain("was written by the flsm engine, and this server was started with --engine memory");
    expect(await fs.list(DIR)).not.toContain("LOCK");
    const again = await openDurableDatabase({ fs, dir: DIR, engine: { kind: "flsm" } });
    expect(text(again.read(["a"]).records[0]!.value)).toBe("1");
    await again.close();
  });
});

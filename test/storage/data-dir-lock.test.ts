import { describe, expect, test } from "bun:test";
import { HomeKvError } from "../../src/errors.ts";
import { MemoryFileSystem } from "../../src/io/fs/memory-fs.ts";
import { lockDataDir, processIsAlive } from "../../src/storage/data-dir-lock.ts";
import { bytes, text } from "../helpers/bytes.ts";

const DIR = "/data/homekv";
const LOCK = `${DIR}/LOCK`;

async function newFs(): Promise<MemoryFileSystem> {
  const fs = new MemoryFileSystem();
  await fs.mkdirp(DIR);
  return fs;
}

async function lockError(promise: Promise<unknown>): Promise<HomeKvError> {
  try {
    await promise;
  } catch (error) {
    expect(error).toBeInstanceOf(HomeKvError);
    return error as HomeKvError;
  }
  throw new Error("expected the lock to be refused");
}

describe("lockDataDir", () => {
  test("takes a free directory: a LOCK file holding the pid, removed again by release", async () => {
    const fs = await newFs();
    const lock = await lockDataDir({ fs, dir: DIR, pid: 4242, isAlive: () => true });
    expect(text(fs.bytes(LOCK))).toBe("4242\n");
    await lock.release();
    expect(await fs.list(DIR)).not.toContain("LOCK");
    // Free again: the next one gets it.
    const next = await lockDataDir({ fs, dir: DIR, pid: 4343, isAlive: () => true });
    expect(text(fs.bytes(LOCK))).toBe("4343\n");
    await next.release();
  });

  test("a lock held by a live pid is refused with E_LOCKED naming the directory and the pid, and the LOCK is left alone", async () => {
    const fs = await newFs();
    await lockDataDir({ fs, dir: DIR, pid: 1234, isAlive: () => true });
    const asked: number[] = [];
    const error = await lockError(
      lockDataDir({
        fs,
        dir: DIR,
        pid: 5678,
        isAlive: (pid) => {
          asked.push(pid);
          return pid === 1234;
        },
      }),
    );
    expect(error.code).toBe("E_LOCKED");
    expect(error.message).toContain(DIR);
    expect(error.message).toContain("pid 1234");
    expect(asked).toEqual([1234]);
    expect(text(fs.bytes(LOCK))).toBe("1234\n");
  });

  test("a lock left by a dead pid is taken over", async () => {
    const fs = await newFs();
    fs.overwrite(LOCK, bytes("1234\n"));
    const lock = await lockDataDir({ fs, dir: DIR, pid: 5678, isAlive: (pid) => pid !== 1234 });
    expect(text(fs.bytes(LOCK))).toBe("5678\n");
    // The new holder is protected in turn.
    const error = await lockError(lockDataDir({ fs, dir: DIR, pid: 9999, isAlive: () => true }));
    expect(error.code).toBe("E_LOCKED");
    expect(error.message).toContain("pid 5678");
    await lock.release();
    expect(await fs.list(DIR)).not.toContain("LOCK");
  });

  test("a LOCK that holds no pid (an interrupted write) is taken over", async () => {
    const fs = await newFs();
    fs.overwrite(LOCK, new Uint8Array(0));
    const lock = await lockDataDir({ fs, dir: DIR, pid: 77, isAlive: () => true });
    expect(text(fs.bytes(LOCK))).toBe("77\n");
    await lock.release();
  });

  test("disk errors other than EEXIST are not mistaken for a held lock", async () => {
    const fs = await newFs();
    fs.injectFault({ op: "createExclusive", code: "EIO" });
    let failed: unknown;
    await lockDataDir({ fs, dir: DIR, pid: 1, isAlive: () => false }).catch((error) => {
      failed = error;
    });
    expect((failed as { code?: string }).code).toBe("EIO");
  });
});

describe("processIsAlive", () => {
  test("is true for this process and false for a pid that cannot exist", () => {
    expect(processIsAlive(process.pid)).toBe(true);
    expect(processIsAlive(2 ** 22 + 12345)).toBe(false);
  });
});

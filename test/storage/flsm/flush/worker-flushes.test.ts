import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { realFileSystem } from "../../../../src/io/fs/real-fs.ts";
import { tableFileName } from "../../../../src/storage/flsm/disk-levels.ts";
import type { Entry } from "../../../../src/storage/flsm/entry.ts";
import { CHUNK_BYTES } from "../../../../src/storage/flsm/flush/flush-protocol.ts";
import { WorkerFlushes } from "../../../../src/storage/flsm/flush/worker-flushes.ts";
import { writeTableFile } from "../../../../src/storage/flsm/table-file-writer.ts";

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "homekv-flush-worker-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Entries in internal-key order: several versions per key, tombstones and deadlines among them, many chunks' worth. */
function entries(): Entry[] {
  const out: Entry[] = [];
  const encoder = new TextEncoder();
  for (let k = 0; k < 15_000; k++) {
    const key = encoder.encode(`key/${String(k).padStart(6, "0")}`);
    for (let revision = 3; revision >= 1; revision--) {
      const tombstone = (k + revision) % 11 === 0;
      out.push({
        key,
        revision: k * 3 + revision,
        value: tombstone ? null : encoder.encode(`value ${k}@${revision} `.repeat(4)),
        createRevision: tombstone ? 0 : k * 3 + 1,
        version: tombstone ? 0 : revision,
        ...(k % 97 === 0 && !tombstone ? { expiresAtMs: 1_700_000_000_000 + k } : {}),
      });
    }
  }
  return out;
}

test("the flush Worker writes, byte for byte, the table a flush in process writes", async () => {
  const all = entries();
  const flushes = new WorkerFlushes();
  try {
    const dirs = { worker: join(scratch, "worker"), process: join(scratch, "process") };
    for (const dir of Object.values(dirs)) await realFileSystem.mkdirp(dir);
    const path = (dir: string) => join(dir, tableFileName(7));
    // Two tables in a row through one Worker: it takes the next flush after the first. The first
    // compresses its blocks (the default), the second stores them as built.
    for (const compression of ["zstd", "none"] as const) {
      const options = { blockBytes: 1024, compression };
      rmSync(path(dirs.worker), { force: true });
      rmSync(path(dirs.process), { force: true });
      const meta = await flushes.writeTable({
        dir: dirs.worker,
        path: path(dirs.worker),
        number: 7,
        options,
        entries: all,
      });
      const expected = await writeTableFile(realFileSystem, dirs.process, path(dirs.process), 7, all, options);
      expect(meta).toEqual(expected);
      expect(readFileSync(path(dirs.worker)).equals(readFileSync(path(dirs.process)))).toBe(true);
    }
    // The entries crossed as many chunks (blocks as built): the flow control between them was exercised.
    expect(readFileSync(path(dirs.worker)).byteLength).toBeGreaterThan(8 * CHUNK_BYTES);
  } finally {
    await flushes.close();
  }
});

test("a flush that fails in the Worker rejects with its error and leaves no file; the next flush goes through", async () => {
  const flushes = new WorkerFlushes();
  try {
    const dir = join(scratch, "failing");
    await realFileSystem.mkdirp(dir);
    const unordered = entries().reverse();
    const error = (await flushes
      .writeTable({ dir, path: join(dir, tableFileName(1)), number: 1, options: {}, entries: unordered })
      .catch((caught: unknown) => caught)) as Error;
    expect(error.message).toContain("internal-key order");
    expect(error.stack).toContain("(in the flush Worker)");
    expect(readdirSync(dir)).toEqual([]);
    const meta = await flushes.writeTable({
      dir,
      path: join(dir, tableFileName(2)),
      number: 2,
      options: {},
      entries: entries(),
    });
    expect(meta.entries).toBe(entries().length);
    expect(readdirSync(dir)).toEqual([tableFileName(2)]);
  } finally {
    await flushes.close();
  }
});

test("closing the runner during a flush rejects it (E_UNAVAILABLE) and removes the table's file", async () => {
  const flushes = new WorkerFlushes();
  const dir = join(scratch, "closed");
  await realFileSystem.mkdirp(dir);
  const all = entries();
  let given = 0;
  // The runner is closed once a few chunks have been handed over: mid-table.
  const closing: Promise<void>[] = [];
  function* slow(): Generator<Entry> {
    for (const entry of all) {
      if (++given === Math.floor(all.length / 2)) closing.push(flushes.close());
      yield entry;
    }
  }
  const error = (await flushes
    .writeTable({ dir, path: join(dir, tableFileName(3)), number: 3, options: {}, entries: slow() })
    .catch((caught: unknown) => caught)) as { code?: string };
  await Promise.all(closing);
  expect(error.code).toBe("E_UNAVAILABLE");
  expect(readdirSync(dir)).toEqual([]);
});

test("entries that fail while being encoded fail the flush with their error, leave no file, and the next flush goes through", async () => {
  const flushes = new WorkerFlushes();
  try {
    const dir = join(scratch, "encoding");
    await realFileSystem.mkdirp(dir);
    const all = entries();
    function* failing(): Generator<Entry> {
      yield* all.slice(0, all.length / 2);
      throw new Error("the memtable broke");
    }
    const error = (await flushes
      .writeTable({ dir, path: join(dir, tableFileName(4)), number: 4, options: {}, entries: failing() })
      .catch((caught: unknown) => caught)) as Error;
    expect(error.message).toBe("the memtable broke");
    expect(readdirSync(dir)).toEqual([]);
    const meta = await flushes.writeTable({
      dir,
      path: join(dir, tableFileName(5)),
      number: 5,
      options: {},
      entries: all,
    });
    expect(meta.entries).toBe(all.length);
  } finally {
    await flushes.close();
  }
});

import { afterAll, beforeAll, expect, test } from "bun:test";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { isHomeKvError } from "../../../../src/errors.ts";
import { errorCode } from "../../../../src/io/fs/file-system.ts";
import { realFileSystem } from "../../../../src/io/fs/real-fs.ts";
import { inProcessRunner } from "../../../../src/storage/flsm/compaction/compaction-runner.ts";
import type { CompactionJobRequest } from "../../../../src/storage/flsm/compaction/run-compaction-job.ts";
import { tablePath } from "../../../../src/storage/flsm/compaction/table-file-sink.ts";
import { WorkerCompactionRunner } from "../../../../src/storage/flsm/compaction/worker-runner.ts";
import type { Entry } from "../../../../src/storage/flsm/entry.ts";
import { compactionJob } from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import { DEFAULT_GUARD_TUNING } from "../../../../src/storage/flsm/levels/guards.ts";
import type { TableMeta } from "../../../../src/storage/flsm/levels/table-meta.ts";
import { waitFor } from "../../../helpers/wait.ts";
import { DENSE_GUARDS, levelZero, overlappingRuns, writeInputs } from "./inputs.ts";

let scratch: string;
beforeAll(() => {
  scratch = mkdtempSync(join(tmpdir(), "homekv-compaction-"));
});
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const smallTuning = { maxTableBytes: 300, guards: DENSE_GUARDS, table: { blockBytes: 128 } };

/** The overlapping small inputs written to a new directory, and the level-0 job over them. */
async function smallJob(name: string): Promise<CompactionJobRequest> {
  const dir = join(scratch, name);
  const levels = levelZero(await writeInputs(realFileSystem, dir, overlappingRuns()));
  return { dir, job: compactionJob(levels, 0, 0), levels, floor: 0, tuning: smallTuning };
}

function counter(first: number): { next: () => number; handed: number[] } {
  const handed: number[] = [];
  let number = first;
  return {
    next: () => {
      handed.push(number);
      return number++;
    },
    handed,
  };
}

const sstFiles = (dir: string): string[] =>
  readdirSync(dir)
    .filter((name) => name.endsWith(".sst"))
    .sort();

test("a job in the Worker writes the same tables, byte for byte, and the same result as in process", async () => {
  const [here, there] = [await smallJob("in-process"), await smallJob("worker")];
  const inProcess = await inProcessRunner(realFileSystem, counter(10).next).run(here);
  const runner = new WorkerCompactionRunner(counter(10).next);
  try {
    const inWorker = await runner.run(there);
    expect(inWorker).toEqual(inProcess);
    expect(inWorker.outputs.length).toBeGreaterThan(5);
    expect(sstFiles(there.dir)).toEqual(sstFiles(here.dir));
    for (const name of sstFiles(here.dir))
      expect({ name, same: readFileSync(join(there.dir, name)).equals(readFileSync(join(here.dir, name))) }).toEqual({
        name,
        same: true,
      });
    // The Worker stays for the next job.
    const again = await smallJob("worker-again");
    expect((await runner.run(again)).outputs.length).toBe(inProcess.outputs.length);
  } finally {
    await runner.close();
  }
}, 30_000);

test("a job's error crosses from the Worker as the engine would see it in process, and leaves no table", async () => {
  const runner = new WorkerCompactionRunner(counter(10).next);
  try {
    const damaged = await smallJob("damaged");
    const last = damaged.job.inputs.at(-1) as TableMeta;
    const path = tablePath(damaged.dir, last.number);
    const bytes = readFileSync(path);
    bytes[bytes.byteLength - 20] = (bytes[bytes.byteLength - 20] as number) ^ 0xff; // in the footer
    writeFileSync(path, bytes);
    const corrupt = await runner.run(damaged).catch((error: unknown) => error);
    expect(isHomeKvError(corrupt, "E_CORRUPT")).toBe(true);
    expect((corrupt as Error).message).toContain(path);

    const missing = await smallJob("missing");
    rmSync(tablePath(missing.dir, (missing.job.inputs[0] as TableMeta).number));
    const before = sstFiles(missing.dir);
    expect(errorCode(await runner.run(missing).catch((error: unknown) => error))).toBe("ENOENT");
    expect(sstFiles(missing.dir)).toEqual(before);

    // A failed job leaves the Worker able to run the next.
    expect((await runner.run(await smallJob("after-errors"))).outputs.length).toBeGreaterThan(5);
  } finally {
    await runner.close();
  }
}, 30_000);

test("a job the engine can give no more file numbers ends, its tables removed, and the next job gets a new Worker", async () => {
  let given = 0;
  let closed = true;
  const runner = new WorkerCompactionRunner(() => {
    if (closed && given === 2) throw new Error("the manifest is closed");
    return 10 + given++;
  });
  try {
    const request = await smallJob("no-numbers");
    const before = sstFiles(request.dir);
    const error = await runner.run(request).catch((caught: unknown) => caught);
    expect(isHomeKvError(error, "E_UNAVAILABLE")).toBe(true);
    expect((error as Error).message).toContain("no file number for a compaction table: the manifest is closed");
    expect(sstFiles(request.dir)).toEqual(before);
    closed = false;
    expect((await runner.run(await smallJob("numbers-again"))).outputs.length).toBeGreaterThan(5);
  } finally {
    await runner.close();
  }
}, 30_000);

const MiB = 1024 * 1024;
/** Keys 0…n−1 dealt so that each is in three of the four tables, at the revision of its table. */
const LARGE_TABLES = 4;
const VALUE = new Uint8Array(100).fill(0x5a);

/** Four level-0 tables of about `tableBytes` each, every key in three of them, at its table's revision. */
function largeRuns(tableBytes: number): Iterable<Entry>[] {
  // About 119 bytes a version in a table (a 16-byte key shares most of it with the one before).
  const keysPerTable = Math.ceil(tableBytes / 110);
  const keyCount = Math.ceil((keysPerTable * LARGE_TABLES) / (LARGE_TABLES - 1));
  return Array.from({ length: LARGE_TABLES }, (_, t) =>
    (function* () {
      for (let k = 0; k < keyCount; k++) {
        if (k % LARGE_TABLES === t) continue;
        const key = new TextEncoder().encode(`key-${String(k).padStart(12, "0")}`);
        yield { key, revision: t + 1, value: VALUE, createRevision: 1, version: t + 1 };
      }
    })(),
  );
}

async function largeJob(name: string): Promise<CompactionJobRequest> {
  const dir = join(scratch, name);
  // Stored as built: the one repeated value would compress 64 MiB to almost nothing.
  const inputs = await writeInputs(realFileSystem, dir, largeRuns(16 * MiB), { compression: "none" });
  const levels = levelZero(inputs, DEFAULT_GUARD_TUNING.levelCount);
  const tuning = { maxTableBytes: 8 * MiB, guards: DEFAULT_GUARD_TUNING };
  return { dir, job: compactionJob(levels, 0, 0), levels, floor: 0, tuning };
}

/** Runs `request` in the Worker while a 1 ms interval probes the main thread: the longest gap between two ticks. */
async function probedRun(runner: WorkerCompactionRunner, request: CompactionJobRequest) {
  // The garbage of writing the inputs is collected now, not during the measurement.
  Bun.gc(true);
  const started = performance.now();
  let last = started;
  let longest = 0;
  let ticks = 0;
  const probe = setInterval(() => {
    const now = performance.now();
    longest = Math.max(longest, now - last);
    last = now;
    ticks++;
  }, 1);
  const result = await runner.run(request).finally(() => clearInterval(probe));
  return { result, longest, ticks, elapsed: performance.now() - started };
}

test("a 64 MiB compaction in the Worker stalls the main thread's event loop by less than 50 ms", async () => {
  const request = await largeJob("large");
  const inputBytes = request.job.inputs.reduce((sum, table) => sum + table.sizeBytes, 0);
  expect(inputBytes).toBeGreaterThan(64 * MiB);
  const runner = new WorkerCompactionRunner(counter(100).next);
  const longest: number[] = [];
  try {
    // The machine is shared: another process may take the main thread's core for a while. Up to
    // three runs, the best counts; a job on the main thread stalls it ~300 ms every time.
    for (let attempt = 0; attempt < 3 && !(Math.min(...longest) < 50); attempt++) {
      const { result, ticks, elapsed, ...probe } = await probedRun(runner, request);
      longest.push(probe.longest);
      console.log(
        `64 MiB compaction in the Worker: ${(inputBytes / MiB).toFixed(1)} MiB in, ${(result.bytesWritten / MiB).toFixed(1)} MiB out, ` +
          `${result.outputs.length} tables in ${elapsed.toFixed(0)} ms; main thread: ${ticks} probe ticks, longest gap ${probe.longest.toFixed(1)} ms`,
      );
      // Each key's three versions at floor 0: every entry is kept.
      expect(result.entriesWritten).toBe(result.entriesRead);
      expect(ticks).toBeGreaterThan(elapsed / 10);
    }
    expect(Math.min(...longest)).toBeLessThan(50);
  } finally {
    await runner.close();
  }
}, 120_000);

test("closing the runner during a job rejects it with E_UNAVAILABLE and removes the tables the Worker had begun", async () => {
  const request = await largeJob("closed");
  const before = sstFiles(request.dir);
  const numbers = counter(100);
  const runner = new WorkerCompactionRunner(numbers.next);
  const outcome = runner.run(request).catch((error: unknown) => error);
  await waitFor(() => numbers.handed.length >= 2, {
    what: "the Worker to start its second output table",
    timeoutMs: 60_000,
  });
  await runner.close();
  const error = await outcome;
  expect(isHomeKvError(error, "E_UNAVAILABLE")).toBe(true);
  expect(sstFiles(request.dir)).toEqual(before);
}, 120_000);

test("the level set crosses to the Worker whole: a job into a level with guards and tables gives what it gives in process", async () => {
  // The small job, installed in two directories; then level 1's first guard compacts into level 2.
  const next = async (name: string) => {
    const request = await smallJob(name);
    const first = await inProcessRunner(realFileSystem, counter(10).next).run(request);
    const levels = request.levels.apply(first.change);
    return { ...request, levels, job: compactionJob(levels, 1, 0) };
  };
  const [here, there] = [await next("deeper-in-process"), await next("deeper-worker")];
  expect(here.levels.guards(1).length).toBeGreaterThan(1);
  expect(here.levels.tables(2).length).toBe(0);
  const inProcess = await inProcessRunner(realFileSystem, counter(100).next).run(here);
  const runner = new WorkerCompactionRunner(counter(100).next);
  try {
    expect(await runner.run(there)).toEqual(inProcess);
    expect(inProcess.change.removed.length).toBeGreaterThan(0);
    expect(() => here.levels.apply(inProcess.change)).not.toThrow();
  } finally {
    await runner.close();
  }
}, 30_000);

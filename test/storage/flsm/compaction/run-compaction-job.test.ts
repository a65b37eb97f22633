import { expect, test } from "bun:test";
import { errorCode } from "../../../../src/io/fs/file-system.ts";
import { MemoryFileSystem } from "../../../../src/io/fs/memory-fs.ts";
import { runCompactionJob } from "../../../../src/storage/flsm/compaction/run-compaction-job.ts";
import { compactionJob } from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import { DENSE_GUARDS, levelZero, overlappingRuns, readTable, writeInputs } from "./inputs.ts";

const DIR = "db/flsm";
const tuning = { maxTableBytes: 300, guards: DENSE_GUARDS, table: { blockBytes: 128 } };

async function setUp() {
  const fs = new MemoryFileSystem();
  const runs = overlappingRuns();
  const inputs = await writeInputs(fs, DIR, runs);
  const levels = levelZero(inputs);
  const files = (await fs.list(DIR)).sort();
  let next = 10;
  const run = () =>
    runCompactionJob({
      fs,
      dir: DIR,
      job: compactionJob(levels, 0, 0),
      levels,
      floor: 0,
      tuning,
      allocateNumber: () => next++,
    });
  return { fs, files, run };
}

/** Runs the job with a fault `after` 0, 1, 2… matching calls until it succeeds; every failure must leave only the inputs. */
async function failAtEveryStep(op: "append" | "sync" | "syncDir" | "readFile", code: string): Promise<number> {
  for (let after = 0; after < 1000; after++) {
    const { fs, files, run } = await setUp();
    fs.injectFault({ op, code, after, times: 1 });
    const outcome = await run().then(
      (result) => ({ result }),
      (error: unknown) => ({ error }),
    );
    if ("result" in outcome) {
      // Past the last matching call: the job is whole, and a power cut now loses none of it.
      expect(outcome.result.outputs.length).toBeGreaterThan(5);
      fs.clearFaults();
      fs.crash();
      for (const table of outcome.result.outputs)
        expect((await readTable(fs, DIR, table.number)).length).toBe(table.entries);
      return after;
    }
    expect({ after, code: errorCode(outcome.error) }).toEqual({ after, code });
    expect({ after, files: (await fs.list(DIR)).sort() }).toEqual({ after, files });
  }
  throw new Error(`${op} ${code}: the job still failed after 1000 injected faults`);
}

for (const op of ["append", "sync", "syncDir", "readFile"] as const)
  for (const code of ["ENOSPC", "EIO"])
    test(`${code} at every ${op} of a job: the error surfaces and no table is left behind`, async () => {
      const steps = await failAtEveryStep(op, code);
      // Each output table is appended in several blocks and synced once; the directory synced once; 3 inputs read.
      expect(steps).toBeGreaterThanOrEqual({ append: 20, sync: 6, syncDir: 1, readFile: 3 }[op]);
    });

test("a disk that fills part way through a job (a short write, then ENOSPC) is left as it was", async () => {
  let failures = 0;
  for (let room = 0; room < 100_000; room += 97) {
    const { fs, files, run } = await setUp();
    const used = (await Promise.all(files.map((name) => fs.readFile(`${DIR}/${name}`)))).reduce(
      (sum, bytes) => sum + bytes.byteLength,
      0,
    );
    fs.setCapacity(used + room);
    const error = await run().then(
      () => undefined,
      (caught: unknown) => caught,
    );
    if (error === undefined) {
      expect(failures).toBeGreaterThan(10);
      return;
    }
    failures++;
    expect({ room, code: errorCode(error), files: (await fs.list(DIR)).sort() }).toEqual({
      room,
      code: "ENOSPC",
      files,
    });
  }
  throw new Error("the job never fitted");
});

test("when removing a failed job's tables fails too, the job's own error is the one thrown", async () => {
  const { fs, run } = await setUp();
  fs.injectFault({ op: "sync", code: "EIO", after: 3 });
  fs.injectFault({ op: "remove", code: "EACCES" });
  const error = await run().catch((caught: unknown) => caught);
  expect(errorCode(error)).toBe("EIO");
});

/**
 * A program for compiled-worker.test.ts, compiled with the Workers as the binary is: writes the
 * small inputs into the directory named by its argument, runs their level-0 job in the compaction
 * Worker, and prints the result as JSON (keys as arrays of bytes).
 */
import { realFileSystem } from "../../../../src/io/fs/real-fs.ts";
import { WorkerCompactionRunner } from "../../../../src/storage/flsm/compaction/worker-runner.ts";
import { compactionJob } from "../../../../src/storage/flsm/levels/compaction-picker.ts";
import { DENSE_GUARDS, levelZero, overlappingRuns, writeInputs } from "./inputs.ts";

export const SMALL_TUNING = { maxTableBytes: 300, guards: DENSE_GUARDS, table: { blockBytes: 128 } };

/** JSON with byte arrays as plain arrays, so that the binary's output compares with a result made in process. */
export const resultJson = (value: unknown): string =>
  JSON.stringify(value, (_, field) => (field instanceof Uint8Array ? [...field] : field));

if (import.meta.main) {
  const dir = process.argv[2] as string;
  const levels = levelZero(await writeInputs(realFileSystem, dir, overlappingRuns()));
  let number = 10;
  const runner = new WorkerCompactionRunner(() => number++);
  try {
    const result = await runner.run({ dir, job: compactionJob(levels, 0, 0), levels, floor: 0, tuning: SMALL_TUNING });
    console.log(resultJson(result));
  } finally {
    await runner.close();
  }
}

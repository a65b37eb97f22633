import type { CompactHook } from "../disk-engine.ts";
import type { CompactionJobTuning } from "./run-compaction-job.ts";
import { WorkerCompactionRunner } from "./worker-runner.ts";

/** An output table ends at the first key boundary past this many bytes (LevelDB writes 2 MiB tables; fewer, larger files here). */
export const MAX_TABLE_BYTES_DEFAULT = 8 * 1024 * 1024;

/**
 * The engine's compactions in one Bun Worker, so that merging and encoding never hold the server's
 * event loop: the hook the disk engine calls (one job at a time), and `close` to end the Worker once
 * the engine is closed. Each job asks the engine's manifest for its tables' numbers.
 */
export function workerCompactions(tuning: CompactionJobTuning): { compact: CompactHook; close(): Promise<void> } {
  let allocate: () => number = () => {
    throw new Error("a compaction asked for a file number outside a job");
  };
  const runner = new WorkerCompactionRunner(() => allocate());
  return {
    compact: ({ job, levels, floor, dir, allocateFileNumber }) => {
      allocate = allocateFileNumber;
      return runner.run({ dir, job, levels, floor, tuning });
    },
    close: () => runner.close(),
  };
}

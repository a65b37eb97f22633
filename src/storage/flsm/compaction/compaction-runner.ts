import type { FileSystem } from "../../../io/fs/file-system.ts";
import { type CompactionJobRequest, type CompactionJobResult, runCompactionJob } from "./run-compaction-job.ts";
import type { AllocateNumber } from "./table-file-sink.ts";

/** Where the engine's compactions run: in a Worker (worker-runner.ts), or in process (tests on the fault-injecting file system). */
export interface CompactionRunner {
  run(request: CompactionJobRequest): Promise<CompactionJobResult>;
  /** Ends the runner; a job still running is abandoned (its tables removed). */
  close(): Promise<void>;
}

/**
 * Runs jobs on this thread, through any FileSystem. Each await of a write lets the event loop turn,
 * but merging and encoding a block's entries run between them: for the server, the Worker.
 */
export function inProcessRunner(fs: FileSystem, allocateNumber: AllocateNumber): CompactionRunner {
  return {
    run: (request) => runCompactionJob({ fs, ...request, allocateNumber }),
    close: async () => {},
  };
}

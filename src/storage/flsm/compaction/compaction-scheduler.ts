import { describeError } from "../../../errors.ts";
import {
  type CompactionJob,
  type CompactionTuning,
  DEFAULT_COMPACTION_TUNING,
  pickCompaction,
  type WriteStall,
  writeStall,
} from "../levels/compaction-picker.ts";
import type { LevelSet } from "../levels/level-set.ts";
import { WriteAmplification } from "../levels/write-amplification.ts";
import type { CompactionRunner } from "./compaction-runner.ts";
import type { CompactionJobResult, CompactionJobTuning } from "./run-compaction-job.ts";

export interface CompactionSchedulerOptions {
  /** The engine's table directory. */
  readonly dir: string;
  /** The engine's level set now: jobs are picked from it and run against it. */
  readonly levels: () => LevelSet;
  /** The GC floor now (min of the oldest pinned snapshot and the compacted revision), taken as a job starts. */
  readonly floor: () => number;
  /**
   * Makes a result the engine's: logs `result.edit` in the manifest, swaps the level set for
   * `levels().apply(result.change)`, then deletes the inputs. If it throws, the scheduler deletes
   * nothing: a failed manifest log may still have become durable, and the next start decides.
   */
  readonly install: (result: CompactionJobResult, job: CompactionJob) => Promise<void>;
  /** Where jobs run (the Worker for the server); the scheduler closes it at `stop`. */
  readonly runner: CompactionRunner;
  readonly jobTuning: CompactionJobTuning;
  readonly tuning?: CompactionTuning;
  /** The engine's, which also counts flushes and user bytes; the scheduler adds each compaction. */
  readonly amplification?: WriteAmplification;
  /** Where a failed job is reported (it is tried again at the next wake). */
  readonly report?: (line: string) => void;
}

/** Jobs one drain runs before it yields to the next (a sustained load keeps the drains coming). */
const JOBS_PER_DRAIN = 64;

/**
 * Runs the levels' compactions one at a time, as long as the picker finds one due: a result is
 * installed against the level set it was picked from, so a second job must not run beside it (see
 * docs/internals/flsm.md, "Guards and compaction"; flushes only add level-0 tables, which no job
 * depends on). The engine calls `wake` after each flush and at open; `writeStall` tells it whether
 * writes must slow down or wait. A failed job is counted and reported, and tried again at the next
 * wake: the level set is as it was and the job's tables are gone (runCompactionJob).
 *
 *   flush → wake → pick L0→L1, run (Worker), install → pick L1 guard "g"→L2, run, install → none due: idle
 */
export class CompactionScheduler {
  readonly amplification: WriteAmplification;
  failures = 0;
  lastError: unknown;
  private draining: Promise<void> | undefined;
  /** A wake came since the running drain last looked for a job. */
  private woken = false;
  private stopped = false;
  private readonly tuning: CompactionTuning;

  constructor(private readonly options: CompactionSchedulerOptions) {
    this.amplification = options.amplification ?? new WriteAmplification();
    this.tuning = options.tuning ?? DEFAULT_COMPACTION_TUNING;
  }

  /** Whether a job is running or about to be. */
  get running(): boolean {
    return this.draining !== undefined;
  }

  /** Compacts until no job is due (or one fails); resolves then. A wake during a drain extends it. */
  wake(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    this.woken = true;
    this.draining ??= this.drain().finally(() => {
      this.draining = undefined;
    });
    return this.draining;
  }

  /** What writes must do now, from level 0's backlog. */
  writeStall(): WriteStall {
    return writeStall(this.options.levels(), this.tuning);
  }

  /** Starts no more jobs, waits for the running one to be installed, and closes the runner. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.draining;
    await this.options.runner.close();
  }

  private async drain(): Promise<void> {
    // Ends when a pass starts with no wake since the last: each pass looks for jobs until none is due.
    while (this.woken && !this.stopped) {
      this.woken = false;
      await this.runDueJobs();
    }
  }

  private async runDueJobs(): Promise<void> {
    const { dir, levels: current, floor, runner, install, jobTuning } = this.options;
    for (let round = 0; round < JOBS_PER_DRAIN; round++) {
      if (this.stopped) return;
      const levels = current();
      const job = pickCompaction(levels, this.tuning);
      if (job === undefined) return;
      try {
        const result = await runner.run({ dir, job, levels, floor: floor(), tuning: jobTuning });
        await install(result, job);
        this.amplification.recordCompaction(result);
      } catch (error) {
        this.failures++;
        this.lastError = error;
        const inputs = job.inputs.map(({ number }) => number).join(", ");
        this.options.report?.(
          `compaction of level ${job.sourceLevel} into ${job.targetLevel} (tables ${inputs}) failed: ${describeError(error)}`,
        );
        return;
      }
    }
    this.woken = true;
  }
}

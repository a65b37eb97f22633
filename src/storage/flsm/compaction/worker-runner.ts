import { assert, describeError, HomeKvError } from "../../../errors.ts";
import type { FileSystem } from "../../../io/fs/file-system.ts";
import { realFileSystem } from "../../../io/fs/real-fs.ts";
import { errorFromWire } from "../worker-errors.ts";
import { WorkerThread } from "../worker-thread.ts";
import type { CompactionRunner } from "./compaction-runner.ts";
import type { CompactionJobRequest, CompactionJobResult } from "./run-compaction-job.ts";
import { tablePath } from "./table-file-sink.ts";
import { type FromWorker, type ToWorker, toWire } from "./worker-protocol.ts";

interface RunningJob {
  readonly thread: WorkerThread<ToWorker, FromWorker>;
  readonly dir: string;
  /** The numbers handed to the job: its tables, if the Worker dies before removing them itself. */
  readonly numbers: number[];
  resolve(result: CompactionJobResult): void;
  reject(error: Error): void;
}

/**
 * Runs jobs in a Bun Worker (worker-thread.ts) on the real file system (a Worker cannot share a
 * MemoryFileSystem; tests on one use `inProcessRunner`), one at a time. It asks for each output
 * table's number by message, answered from `allocateNumber` (the manifest's) on this thread.
 *
 * A job whose Worker dies (an uncaught error, or `close` during the job) is rejected with
 * E_UNAVAILABLE once the Worker has exited and the tables it was given numbers for are removed.
 */
export class WorkerCompactionRunner implements CompactionRunner {
  private thread: WorkerThread<ToWorker, FromWorker> | undefined;
  private running: RunningJob | undefined;

  constructor(
    private readonly allocateNumber: () => number,
    private readonly fs: FileSystem = realFileSystem,
  ) {}

  run(request: CompactionJobRequest): Promise<CompactionJobResult> {
    assert(this.running === undefined, "a compaction job started while another runs");
    const thread = this.started();
    return new Promise<CompactionJobResult>((resolve, reject) => {
      this.running = { thread, dir: request.dir, numbers: [], resolve, reject };
      thread.busy = true;
      thread.post({ type: "run", request: toWire(request) });
    });
  }

  async close(): Promise<void> {
    if (this.thread !== undefined) await this.stop(this.thread, "the compaction runner was closed during a job");
  }

  private started(): WorkerThread<ToWorker, FromWorker> {
    if (this.thread !== undefined) return this.thread;
    const thread: WorkerThread<ToWorker, FromWorker> = new WorkerThread(
      new URL("./compaction-worker.ts", import.meta.url),
      {
        message: (message) => this.receive(thread, message),
        died: (why) => void this.stop(thread, `compaction: ${why}`),
      },
    );
    this.thread = thread;
    return thread;
  }

  private receive(thread: WorkerThread<ToWorker, FromWorker>, message: FromWorker): void {
    const job = this.running;
    if (job?.thread !== thread) return;
    if (message.type === "allocate") {
      let number: number;
      try {
        number = this.allocateNumber();
      } catch (error) {
        // The Worker waits for an answer: without a number, the job ends here.
        void this.stop(thread, `no file number for a compaction table: ${describeError(error)}`);
        return;
      }
      job.numbers.push(number);
      thread.post({ type: "number", number });
      return;
    }
    this.running = undefined;
    thread.busy = false;
    if (message.type === "done") job.resolve(message.result);
    else job.reject(errorFromWire(message.error, "compaction"));
  }

  /** Ends `thread`; its job, if one runs, is rejected once the Worker is gone and the job's tables removed. */
  private async stop(thread: WorkerThread<ToWorker, FromWorker>, why: string): Promise<void> {
    if (this.thread === thread) this.thread = undefined;
    const job = this.running?.thread === thread ? this.running : undefined;
    if (job !== undefined) this.running = undefined;
    await thread.terminate();
    if (job === undefined) return;
    for (const number of job.numbers) await this.fs.remove(tablePath(job.dir, number)).catch(() => {});
    job.reject(new HomeKvError("E_UNAVAILABLE", why));
  }
}

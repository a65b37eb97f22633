import { assert, describeError, HomeKvError } from "../../../errors.ts";
import type { FileSystem } from "../../../io/fs/file-system.ts";
import { realFileSystem } from "../../../io/fs/real-fs.ts";
import type { CompactionRunner } from "./compaction-runner.ts";
import type { CompactionJobRequest, CompactionJobResult } from "./run-compaction-job.ts";
import { tablePath } from "./table-file-sink.ts";
import { errorFromWire, type FromWorker, type ToWorker, toWire } from "./worker-protocol.ts";

/** How long a terminated Worker may take to exit before its job's tables are removed anyway. */
const EXIT_WAIT_MS = 5_000;

interface Thread {
  readonly worker: Worker;
  /** Resolves when the Worker has exited (its "close" event). */
  readonly exited: Promise<void>;
}

interface RunningJob {
  readonly thread: Thread;
  readonly dir: string;
  /** The numbers handed to the job: its tables, if the Worker dies before removing them itself. */
  readonly numbers: number[];
  resolve(result: CompactionJobResult): void;
  reject(error: Error): void;
}

/**
 * Runs jobs in a Bun Worker on the real file system (a Worker cannot share a MemoryFileSystem; tests
 * on one use `inProcessRunner`), one at a time. The Worker is started at the first job and kept for
 * the next; it holds the process open only while a job runs. It asks for each output table's number
 * by message, answered from `allocateNumber` (the manifest's) on this thread.
 *
 * The entry point is named relative to this module; in a binary built by `bun build --compile`,
 * every module's URL is the binary's own and the Worker's entry sits beside it under its bare name
 * (scripts/build.ts builds it so), which the same relative URL then names.
 *
 * A job whose Worker dies (an uncaught error, or `close` during the job) is rejected with
 * E_UNAVAILABLE once the Worker has exited and the tables it was given numbers for are removed.
 */
export class WorkerCompactionRunner implements CompactionRunner {
  private thread: Thread | undefined;
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
      thread.worker.ref();
      this.send(thread, { type: "run", request: toWire(request) });
    });
  }

  async close(): Promise<void> {
    if (this.thread !== undefined) await this.stop(this.thread, "the compaction runner was closed during a job");
  }

  private started(): Thread {
    if (this.thread !== undefined) return this.thread;
    const worker = new Worker(new URL("./compaction-worker.ts", import.meta.url));
    worker.unref();
    const exited = new Promise<void>((resolve) => worker.addEventListener("close", () => resolve()));
    const thread = { worker, exited };
    worker.onmessage = (event: MessageEvent<FromWorker>) => this.receive(thread, event.data);
    worker.addEventListener(
      "error",
      (event) => void this.stop(thread, `the compaction Worker failed: ${event.message}`),
    );
    worker.addEventListener("close", () => void this.stop(thread, "the compaction Worker exited"));
    this.thread = thread;
    return thread;
  }

  private send(thread: Thread, message: ToWorker): void {
    thread.worker.postMessage(message);
  }

  private receive(thread: Thread, message: FromWorker): void {
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
      this.send(thread, { type: "number", number });
      return;
    }
    this.running = undefined;
    thread.worker.unref();
    if (message.type === "done") job.resolve(message.result);
    else job.reject(errorFromWire(message.error));
  }

  /** Ends `thread`; its job, if one runs, is rejected once the Worker is gone and the job's tables removed. */
  private async stop(thread: Thread, why: string): Promise<void> {
    if (this.thread === thread) this.thread = undefined;
    thread.worker.terminate();
    const job = this.running?.thread === thread ? this.running : undefined;
    if (job === undefined) return;
    this.running = undefined;
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([thread.exited, new Promise((resolve) => (timer = setTimeout(resolve, EXIT_WAIT_MS)))]);
    clearTimeout(timer);
    for (const number of job.numbers) await this.fs.remove(tablePath(job.dir, number)).catch(() => {});
    job.reject(new HomeKvError("E_UNAVAILABLE", why));
  }
}
